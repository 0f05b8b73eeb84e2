"""Typed ``report`` config: where the report reads runs and statistics from, and where it writes.

The MLflow store and experiment default to the training runs' own (``tracking.*``), so ``python -m
stylegan_v.report`` after ``python -m stylegan_v.train`` needs no arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from stylegan_v.checks import section

FIGURE_FORMATS = ("png", "pdf")


_require = section("report")


@dataclass
class ReportConfig:
    out_dir: str = "reports"  # tables/, figures/ and README.md are (re)written here
    # MLflow store; null = tracking.tracking_uri, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db (cwd)
    tracking_uri: str | None = None
    experiment: str = "stylegan-v"  # MLflow experiment holding the runs (tracking.experiment)
    stats_dir: str | None = None  # dataset statistics (data.stats); null = <paths.data_dir>/stats
    # prepared datasets; evaluations of a real video set (Table 5's real-videos IS) land in <data_dir>/eval-<name>/
    data_dir: str | None = None  # null = paths.data_dir
    figure_formats: list[str] = field(default_factory=lambda: list(FIGURE_FORMATS))
    dpi: int = 110  # PNG resolution; PDFs are vector
    table6_dataset: str = "faceforensics"  # the paper's Table 6 dataset; ours falls back to the newest run's
    table5_dataset: str = "ucf101"  # IS is defined on UCF-101 only (C3D)
    fig9_frames: int = 256  # time axis of Figure 9, in frames
    fig9_code_distance: int = 16  # d between motion anchors in panels (d)-(f) (the model's default)
    fig9_seed: int = 0  # init / motion-noise seed of the small motion module drawn in panels (d)-(f)
    max_sample_runs: int = 12  # sample-grid figures for at most this many runs (newest first)
    g3an_seed: int = 0  # codes of the G3AN appendix C.1-C.4 grids (generate's seed); fixed: same checkpoint, same bytes

    def __post_init__(self) -> None:
        _require(bool(self.out_dir), "out_dir", "must be a non-empty path", self.out_dir)
        _require(bool(self.experiment), "experiment", "must be a non-empty MLflow experiment name", self.experiment)
        bad = [f for f in self.figure_formats if f not in FIGURE_FORMATS]
        _require(bool(self.figure_formats) and not bad, "figure_formats", f"must be a non-empty subset of {list(FIGURE_FORMATS)}",
                 self.figure_formats)
        _require(self.dpi >= 30, "dpi", "must be >= 30", self.dpi)
        _require(self.fig9_frames >= 16, "fig9_frames", "must be >= 16", self.fig9_frames)
        _require(self.fig9_code_distance >= 1, "fig9_code_distance", "must be >= 1", self.fig9_code_distance)
        _require(self.max_sample_runs >= 0, "max_sample_runs", "must be >= 0", self.max_sample_runs)


def register(cs: ConfigStore) -> None:
    cs.store(group="report", name="base_report", node=ReportConfig)
