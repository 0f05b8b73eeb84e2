"""Figures: 9 (positional embeddings per period scheme), 10 (video-length histograms), training curves, samples,
video grids (the G3AN section).

matplotlib with the Agg backend (no display); every figure is written in each of ``formats`` (png, pdf), and
a figure with nothing to draw still exists and says why, so the README never links a missing file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from stylegan_v.reports.embeddings import ACYCLIC_SCALING, FIGURE9_PANELS, acyclic_parts, scheme_curves
from stylegan_v.reports.runs import RunInfo

COLORS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple")
# No time and no library version inside the files: the same report is the same bytes (it is committed).
FIXED_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}


def save(fig: plt.Figure, out_dir: Path, stem: str, formats: list[str], dpi: int) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        fig.savefig(path, dpi=dpi, metadata=FIXED_METADATA[fmt], bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _empty(title: str, message: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


# ------------------------------------------------------------------------------------------ Figure 9


def figure9(frames: int, code_distance: int, seed: int) -> tuple[plt.Figure, dict[str, Any]]:
    """Panels (a)-(f) of Figure 9 with the settings their captions state (FIGURE9_PANELS); each title names the
    panel's seed and periods. Returns the figure and the cycle lengths it printed."""
    fig, axes = plt.subplots(6, 1, figsize=(10, 15), sharex=True)
    info: dict[str, Any] = {}
    for ax, panel in zip(axes[:3], FIGURE9_PANELS):
        c = scheme_curves(panel, frames)
        for i in range(panel.waves):
            ax.plot(c.t.numpy(), c.waves[:, i].numpy(), color=COLORS[i % len(COLORS)], lw=1.0,
                    label=f"period {c.periods[i].item():.1f}")
        ax.set_title(f"({panel.letter}) {panel.label}, {panel.settings()}: d = {panel.waves}, "
                     f"cycle length = {c.cycle_length} frames", fontsize=9)
        ax.legend(loc="upper right", fontsize=7, ncol=panel.waves)
        info[panel.scheme] = c.cycle_length
    parts = acyclic_parts(frames, waves=3, code_distance=code_distance, seed=seed)
    curves = (("d", parts.raw, "Raw acyclic positional embeddings (before stitching)"),
              ("e", parts.stitched, "Stitched without aligners: zero at every anchor"),
              ("f", parts.ours, "Acyclic, linear scaling (ours): AcyclicMotion.forward"))
    for ax, (letter, values, label) in zip(axes[3:], curves):
        for i in range(values.shape[1]):
            ax.plot(parts.t.numpy(), values[:, i].numpy(), color=COLORS[i], lw=1.0)
        for a in parts.anchors.numpy():
            ax.axvline(a, color="0.8", lw=0.5, zorder=0)
        ax.set_title(f"({letter}) {label}: d = 3, seed {seed}, ω_min = {ACYCLIC_SCALING.omega_min:g}, "
                     f"ω_max = {ACYCLIC_SCALING.omega_max:g} (as (c)), anchors every {code_distance} frames; "
                     f"no cycle", fontsize=9)
    axes[-1].set_xlabel("t (frames)")
    for ax in axes:
        ax.set_xlim(0, frames)
    fig.suptitle("Figure 9. Positional embeddings sin(σ t) per period scheme (from stylegan_v.models)", y=1.0)
    fig.tight_layout()
    info["acyclic_init_lcm"] = parts.cycle_length_init
    return fig, info


# ------------------------------------------------------------------------------------------ Figure 10


# Figure 10's panels in the paper's order, (a) to (e); any other prepared dataset follows, by name.
FIGURE10_ORDER = ("faceforensics", "sky_timelapse", "ucf101", "rainbow_jelly", "mead")


def figure10_order(names: list[str]) -> list[str]:
    """The paper's datasets first, as Figure 10 orders its panels, then the rest alphabetically."""
    rank = {name: i for i, name in enumerate(FIGURE10_ORDER)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def figure10(stats: dict[str, dict[str, Any]], stats_dir: Path | None) -> plt.Figure:
    if not stats:
        return _empty("Figure 10. Video lengths", f"no dataset statistics in {stats_dir}\n"
                      "(run `python -m stylegan_v.data.stats dataset=<name>`)")
    names = figure10_order(list(stats))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        s = stats[name]
        hist = s["length_histogram"]
        edges, counts = np.asarray(hist["bin_edges_frames"], float), np.asarray(hist["counts"], float)
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:blue", edgecolor="white")
        letter = f"({'abcde'[FIGURE10_ORDER.index(name)]}) " if name in FIGURE10_ORDER else ""
        ax.set_title(f"{letter}{name}: {s['num_videos']} videos, {float(s['fps']):g} fps")
        ax.set_xlabel("video length (frames)")
        ax.set_ylabel("number of videos")
    fig.suptitle("Figure 10. Distribution of video lengths per prepared dataset", y=1.02)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ training curves

CURVE_KEYS = ("loss/G", "loss/D")


def training_curves(runs: list[RunInfo]) -> plt.Figure:
    """Losses and every snapshot metric against the step; an FVD panel also draws the protocol's floor (held-out
    real clips against the real statistics) as a dashed line per run."""
    if not runs:
        return _empty("Training curves", "no training runs in MLflow")
    metric_keys = sorted({f"metrics/{m}" for r in runs for m in r.metric_names()})
    keys = list(CURVE_KEYS) + metric_keys
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.4), squeeze=False)
    units = sorted({r.step_unit for r in runs})
    for ax, key in zip(axes[0], keys):
        for i, run in enumerate(runs):
            points = run.history.get(key)
            if not points:
                continue
            steps, values = zip(*points)
            label = run.sweep_point or run.name
            color = plt.cm.tab10(i % 10)
            ax.plot(steps, values, marker="o" if len(points) < 8 else None, ms=3, lw=1.0, label=label, color=color)
            floor = run.last("floor/" + key.removeprefix("metrics/")) if key in metric_keys else None
            if floor is not None:
                ax.axhline(floor[1], ls="--", lw=0.8, color=color, label=f"floor (held-out real): {floor[1]:.0f}")
        ax.set_title(key)
        ax.set_xlabel(" / ".join(units))
        if key in metric_keys:
            ax.legend(fontsize=6, loc="best")
    axes[0][0].legend(fontsize=6, loc="best")
    fig.suptitle("Training curves (one line per run or sweep point)", y=1.02)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ sample grids


def sample_grids(run: RunInfo) -> list[Path]:
    """The run's sample grids, oldest first (``samples/samples-<step>.png`` in the run directory)."""
    if run.run_dir is None:
        return []
    return sorted((run.run_dir / "samples").glob("samples-*.png"))


def samples_figure(run: RunInfo, grids: list[Path]) -> plt.Figure:
    """The first and the last sample grid side by side: what training changed."""
    shown = [grids[0], grids[-1]] if len(grids) > 1 else grids[:1]
    images = [np.asarray(Image.open(g).convert("RGB")) for g in shown]
    h, w = images[0].shape[:2]
    fig, axes = plt.subplots(1, len(images), squeeze=False,
                             figsize=(min(16, max(3, len(images) * w / 40)), min(12, max(2, h / 40)) + 0.6))
    for ax, grid, img in zip(axes[0], shown, images):
        ax.imshow(img, interpolation="nearest")
        ax.axis("off")
        step = int(grid.stem.rsplit("-", 1)[-1])
        ax.set_title(f"{'first' if grid == shown[0] and len(shown) > 1 else 'last'} snapshot: step {step}", fontsize=8)
    fig.suptitle(f"{run.name} ({run.dataset}, {run.model}): rows are videos, columns frames t = 0, 2, 4, …",
                 fontsize=8)
    fig.tight_layout()
    return fig


def video_rows(frames: Any, rows: list[str], title: str) -> plt.Figure:
    """uint8 frames [N, T, 3, H, W] -> one row per video (labelled ``rows``), its T frames left to right."""
    N, T, C, H, W = frames.shape
    image = np.asarray(frames.permute(0, 3, 1, 4, 2).reshape(N * H, T * W, C))  # videos down, frames across
    fig, ax = plt.subplots(figsize=(max(4.0, T * W / 80), N * H / 80 + 0.9))
    ax.imshow(image, interpolation="nearest")
    ax.set_yticks([(i + 0.5) * H - 0.5 for i in range(N)], rows, fontsize=7)
    ax.set_xticks([(j + 0.5) * W - 0.5 for j in range(T)], [str(j) for j in range(T)], fontsize=6)
    ax.set_xlabel("frame t", fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
