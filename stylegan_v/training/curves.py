"""A run's curves as plain tables (for ``dvc plots``): losses per tick, snapshot metrics with their floor.

Read from the run directory's append-only ``metrics.jsonl`` (every point the tracker logged, MLflow or not),
so the tables exist for any run, including one whose tracking server was unreachable.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from stylegan_v.files import atomic_write_text, iter_jsonl
from stylegan_v.tracking.records import METRICS_FILE

LOSS_COLUMNS = {"loss/G": "loss_G", "loss/D": "loss_D", "loss/R1": "loss_R1", "augment/p": "augment_p"}
METRIC_PREFIX, FLOOR_PREFIX = "metrics/", "floor/"


def _table(rows: list[dict[str, float]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_curves(run_dir: Path, out_dir: Path) -> list[Path]:
    """``losses.csv`` (step, kimg, losses, augment p) and, per snapshot metric, ``metrics/<metric>.csv`` (step,
    kimg, value, floor), one row per logged point; returns the files written."""
    losses: dict[int, dict[str, float]] = {}
    metrics: dict[str, dict[int, dict[str, float]]] = {}
    for _, record in iter_jsonl(Path(run_dir) / METRICS_FILE):
        step, values = int(record["step"]), record["metrics"]
        kimg = values.get("progress/kimg")
        row = {LOSS_COLUMNS[k]: v for k, v in values.items() if k in LOSS_COLUMNS}
        if row:
            losses.setdefault(step, {"step": step}).update(row, **({"kimg": kimg} if kimg is not None else {}))
        for key, value in values.items():
            if key.startswith(METRIC_PREFIX):
                metrics.setdefault(key[len(METRIC_PREFIX):], {}).setdefault(step, {"step": step})["value"] = value
        for key, value in values.items():
            if key.startswith(FLOOR_PREFIX) and key[len(FLOOR_PREFIX):] in metrics:
                metrics[key[len(FLOOR_PREFIX):]][step]["floor"] = value
    written = []
    if losses:
        path = Path(out_dir) / "losses.csv"
        atomic_write_text(path, _table([losses[s] for s in sorted(losses)], ["step", "kimg", *LOSS_COLUMNS.values()]))
        written.append(path)
    kimg_at = {s: r.get("kimg") for s, r in losses.items()}
    for name, points in metrics.items():
        rows = [{**points[s], "kimg": kimg_at.get(s)} for s in sorted(points)]
        path = Path(out_dir) / "metrics" / f"{name}.csv"
        atomic_write_text(path, _table(rows, ["step", "kimg", "value", "floor"]))
        written.append(path)
    return written


def copy_sample_grids(run_dir: Path, out_dir: Path) -> list[Path]:
    """Every snapshot's sample grid, under its own name (``samples-<step>.png``), replacing what was there."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    copied = []
    for grid in sorted((Path(run_dir) / "samples").glob("samples-*.png")):
        copied.append(Path(shutil.copy2(grid, out_dir / grid.name)))
    return copied
