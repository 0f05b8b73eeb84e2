"""Evaluate a generator checkpoint or a second video set against the real data on a list of named metrics.

    python -m stylegan_v.evaluate +metrics=cpu metrics.real=data/sample_videos metrics.fake=data/other
    python -m stylegan_v.evaluate +metrics=paper metrics.checkpoint=runs/x/snapshot.pt metrics.generator_loader=pkg.mod:fn

Table 4 (FVD_16 under each protocol variant of appendix C, for two checkpoints) is one multirun over the
options of ``conf/metrics/table4/``, each checkpoint scored against its own training data:

    python -m stylegan_v.evaluate -m metrics=paper '+metrics/table4=glob(*)' metrics.checkpoint=<ffs.pt>,<sky.pt>

Writes ``metrics.json`` (this evaluation) and appends one line per metric to ``metric-<name>.jsonl`` in the
output directory (next to the checkpoint by default; ``eval-<variant>`` below it for a named protocol
variant), and logs the values to the checkpoint's MLflow run when its run directory holds ``mlflow_run.json``.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from stylegan_v.cli import entry_point
from stylegan_v.configs import register_configs, resolved_yaml, validate
from stylegan_v.metrics.config import MetricsConfig

if TYPE_CHECKING:  # torch-heavy: imported where used, so that --help and a refused value answer at once
    from stylegan_v.metrics.fvd import FakeGenerator
    from stylegan_v.metrics.video_source import VideoSource

log = logging.getLogger(__name__)

register_configs()
TRACKING_LOCK = ".tracking.lock"  # serialises check-then-log of evaluations into one MLflow run


def load_generator(loader: str, checkpoint: str, device: str) -> FakeGenerator:
    """``"package.module:function"`` called as ``function(checkpoint, device)`` -> a FakeGenerator."""
    module_name, sep, attr = loader.partition(":")
    if not sep:
        raise ValueError(f"metrics.generator_loader must look like 'package.module:function', got {loader!r}")
    return getattr(importlib.import_module(module_name), attr)(checkpoint, device)


def resolve_inputs(cfg: DictConfig, mcfg: MetricsConfig) -> tuple[str, VideoSource, VideoSource | FakeGenerator, Path]:
    """(real set's path, real set, fake set or generator, output directory)."""
    from stylegan_v.metrics.video_source import open_video_source

    real_path = mcfg.real
    if real_path is None:
        name = checkpoint_dataset(mcfg.checkpoint) if mcfg.checkpoint is not None else None
        dataset = cfg.get("dataset")
        if name is None and (dataset is None or not dataset.get("name")):
            raise ValueError("set metrics.real (a prepared dataset folder) or choose a dataset (dataset=<name>)")
        real_path = str(Path(cfg.paths.data_dir) / (name or dataset.name))
    real = open_video_source(real_path)
    if mcfg.checkpoint is not None:
        fake: VideoSource | FakeGenerator = load_generator(mcfg.generator_loader, mcfg.checkpoint, mcfg.device)
        checkpoint = Path(mcfg.checkpoint)
        default_out = checkpoint if checkpoint.is_dir() else checkpoint.parent  # a run directory: inside it
    elif mcfg.fake is not None:
        fake = open_video_source(mcfg.fake)
        default_out = Path(mcfg.fake).parent / f"eval-{Path(mcfg.fake).name}"
    else:
        raise ValueError("set metrics.fake (a video set) or metrics.checkpoint + metrics.generator_loader")
    if mcfg.variant is not None:
        default_out = default_out / f"eval-{mcfg.variant}"  # variants of one checkpoint do not share metrics.json
    return real_path, real, fake, Path(mcfg.output_dir) if mcfg.output_dir else default_out


def checkpoint_dataset(checkpoint: str) -> str | None:
    """The dataset a training checkpoint (file or run directory) was trained on, from its saved config, so that
    one command can score checkpoints of different datasets; None when the file does not say."""
    from stylegan_v.training.checkpoint import CheckpointError, load_from

    try:
        _, state = load_from(checkpoint, keys=("config",))
        return str(state["config"]["dataset"]["name"])
    except (CheckpointError, FileNotFoundError, KeyError, TypeError):
        return None


def write_results(out_dir: Path, results: dict[str, dict], context: dict[str, Any]) -> Path:
    """``metrics.json`` (this evaluation, for ``dvc metrics``), written atomically; each metric's record appended
    to ``metric-<name>.jsonl`` in the one record layout (:mod:`stylegan_v.metrics.records`)."""
    from stylegan_v.files import atomic_write_json
    from stylegan_v.metrics.records import write_record

    path = atomic_write_json(out_dir / "metrics.json", {**context, "results": results}, indent=2)
    for record in results.values():
        write_record(out_dir, record, "evaluate", **context)
    return path


def checkpoint_step(checkpoint: str) -> int:
    """The MLflow step of a training checkpoint (its frames shown, in the run's ``tracking.step_unit``), so
    an evaluation lands on the same x-axis as the training curves; 0 when the file does not say."""
    from stylegan_v.training.checkpoint import CheckpointError, load_from

    try:
        _, state = load_from(checkpoint, keys=("progress", "config"))
        nimg = int(state["progress"]["nimg"])
        unit = state["config"].get("tracking", {}).get("step_unit", "kimg")
    except (CheckpointError, FileNotFoundError, KeyError, TypeError):
        return 0
    return nimg if unit == "img" else nimg // 1000


def log_to_mlflow(checkpoint: str | None, results: dict[str, dict], variant: str | None = None) -> bool:
    """Log values to the MLflow run recorded (``mlflow_run.json``) in the checkpoint's run directory, if any.

    Idempotent per (run, key, step) across processes: a point already in the run is not logged again (two
    evaluations of one checkpoint, or an evaluation of a checkpoint the training already scored). The numbers
    are in metric-<name>.jsonl already, so an unreachable tracking server only costs a warning. A protocol
    variant logs under ``metrics/<name>/<variant>``: never in place of the protocol's own curve.
    """
    if checkpoint is None:
        return False
    from stylegan_v.files import exclusive_lock
    from stylegan_v.tracking.records import read_run_file

    path = Path(checkpoint)
    for run_dir in ((path,) if path.is_dir() else ()) + (path.parent, path.parent.parent):
        record = read_run_file(run_dir)
        if record is None:
            continue
        try:
            import mlflow

            client = mlflow.tracking.MlflowClient(tracking_uri=record["tracking_uri"])
            step = checkpoint_step(checkpoint)
            with exclusive_lock(run_dir / TRACKING_LOCK, f"MLflow logging for {run_dir}", wait=True):
                for name, res in results.items():
                    key = f"metrics/{name}" + (f"/{variant}" if variant else "")
                    if res.get("status") != "ok":
                        continue
                    if any(m.step == step for m in client.get_metric_history(record["run_id"], key)):
                        log.info("%s at step %d is already in MLflow run %s: not logged again", key, step,
                                 record["run_id"])
                        continue
                    client.log_metric(record["run_id"], key, float(res["value"]), step=step)
        except Exception as err:  # noqa: BLE001 - any MLflow/network failure; results are on disk already
            log.warning("could not log to MLflow run %s at %s: %s", record["run_id"], record["tracking_uri"], err)
            return False
        return True
    return False


def run(cfg: DictConfig) -> dict:
    """Compute every metric in ``cfg.metrics.names``; returns {name: record}."""
    from stylegan_v.metrics.registry import Detectors, run_metric

    if cfg.get("metrics") is None:
        raise ValueError("no metrics group selected: add metrics=cpu (reduced) or metrics=paper")
    mcfg = cfg.metrics if isinstance(cfg.metrics, MetricsConfig) else validate(cfg).metrics
    real_path, real, fake, out_dir = resolve_inputs(cfg, mcfg)
    detectors = Detectors(mcfg, Path(cfg.paths.cache_dir))
    results = {}
    for name in mcfg.names:
        t0 = time.time()
        results[name] = {**run_metric(name, real, fake, mcfg, detectors, int(cfg.seed)), "seconds": round(time.time() - t0, 2)}
        log.info("%s: %s", name, results[name].get("value"))
    context = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "real": str(real_path), "real_hash": real.content_hash,
        "fake": mcfg.fake, "checkpoint": mcfg.checkpoint, "seed": int(cfg.seed), "variant": mcfg.variant,
    }
    path = write_results(out_dir, results, context)
    logged = log_to_mlflow(mcfg.checkpoint, results, mcfg.variant)
    log.info("wrote %s%s", path, " and logged to MLflow" if logged else "")
    return results


def _evaluate_job(config_yaml: str) -> dict:
    """The evaluation as a job (``cluster=slurm``: a Slurm job the caller waits for)."""
    from omegaconf import OmegaConf

    return run(OmegaConf.create(config_yaml))


@entry_point("evaluate", check=validate)
def main(cfg: DictConfig) -> None:
    from stylegan_v.launch.submit import rank0_result, submit

    cluster = validate(cfg).cluster
    results = rank0_result(submit(_evaluate_job, resolved_yaml(cfg), cluster=cluster, name="evaluate"))
    print(json.dumps({k: {kk: v[kk] for kk in ("status", "value") if kk in v} for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
