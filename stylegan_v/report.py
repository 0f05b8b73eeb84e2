"""``python -m stylegan_v.report [report.out_dir=reports]``: the paper's tables beside ours, Figures 9 and 10,
G3AN's Table 1 and (with a G3AN run) its C.1-C.4 grids.

The last DVC stage. Reads the MLflow experiment of the training runs and the dataset statistics; with no runs
the tables still build, every "ours" cell a dash with its reason.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stylegan_v.cli import entry_point
from stylegan_v.configs import register_configs
from stylegan_v.reports.config import ReportConfig

log = logging.getLogger(__name__)


def report_config(cfg: DictConfig) -> ReportConfig:
    """The ``report`` group over defaults taken from the run's own keys (the same as conf/report/default.yaml),
    so the report also works on a config composed without the group."""
    tracking = cfg.get("tracking") or {}
    derived = {"tracking_uri": tracking.get("tracking_uri"), "experiment": tracking.get("experiment", "stylegan-v"),
               "stats_dir": f"{cfg.paths.data_dir}/stats", "data_dir": str(cfg.paths.data_dir)}
    # resolved in place: the group's interpolations (${paths.data_dir}, ${oc.select:tracking...}) need the root
    given = OmegaConf.to_container(cfg.report, resolve=True) if "report" in cfg and cfg.report is not None else {}
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ReportConfig), derived, given))


def run(cfg: DictConfig) -> dict[str, Any]:
    from stylegan_v.reports.build import build_report  # pandas, matplotlib, MLflow: not for --help

    return build_report(report_config(cfg))


register_configs()


@entry_point("report")
def main(cfg: DictConfig) -> None:
    result = run(cfg)
    log.info("report written to %s (%d runs)", result["out_dir"], result["num_runs"])


if __name__ == "__main__":
    main()
