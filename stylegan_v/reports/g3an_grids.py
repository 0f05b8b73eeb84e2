"""G3AN appendix C.1-C.4 from a trained G3AN run: the videos of ``generate``'s latent-analysis modes, as grids.

The newest finished G3AN run whose run directory is reachable gives its last checkpoint's G_ema. Each grid is one
``generate`` mode with a fixed seed (:func:`stylegan_v.generate.mode_inputs`, the codes ``generate`` itself
renders), every frame of G3AN's 16-frame video, one row per video:

- C.1: one z_a with three z_m (``same_content``; class 0 when the model is conditional);
- C.2: each class with two z_m for one z_a (``same_content`` over the classes, two rows each; conditional only);
- C.3: dimension ``dim`` of z_a, then of z_m, swept over ``generate``'s values (``manipulate_appearance``,
  ``manipulate_motion``);
- C.4: two sampled (z_a, z_m, c) sets, then the two with motion and class switched (``motion_switch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from stylegan_v.generate import mode_inputs
from stylegan_v.reports.runs import RunInfo, RunStore
from stylegan_v.tool_config import GenerateConfig

MODEL = "g3an"  # run.model of a G3AN run


@dataclass(frozen=True)
class Grid:
    key: str  # figure file stem
    title: str
    frames: torch.Tensor  # uint8 [N, T, 3, H, W]: N videos of T frames
    rows: list[str]  # one label per video


def g3an_checkpoint(store: RunStore) -> tuple[RunInfo | None, Path | None, str]:
    """(run, its last checkpoint, "") of the newest finished G3AN run with a checkpoint here, else (None, None,
    why not)."""
    from stylegan_v.training.checkpoint import list_checkpoints

    runs = [r for r in store.finished_training_runs() if r.model == MODEL]
    if not runs:
        return None, None, "no G3AN run in the MLflow store" + (f" ({store.reason})" if store.reason else "")
    finished = [r for r in runs if r.status == "FINISHED"]
    if not finished:
        return None, None, f"no finished G3AN run ({', '.join(f'{r.name}: {r.status}' for r in runs)})"
    for run in reversed(finished):  # newest first
        found = list_checkpoints(run.run_dir) if run.run_dir is not None else []
        if found:
            return run, found[-1], ""
    return None, None, (f"no checkpoint of the finished G3AN runs is reachable here "
                        f"({', '.join(r.name for r in finished)}: run directory absent or empty)")


def render(G: torch.nn.Module, cfg: GenerateConfig) -> torch.Tensor:
    """uint8 frames [N, T, 3, H, W] of every frame of the videos ``cfg.mode`` asks for."""
    from stylegan_v.models.generator import to_rgb_uint8

    T = int(G.video_frames)
    z, c, kwargs = mode_inputs(cfg, G, last=T - 1)
    t = torch.arange(T, dtype=torch.float32).expand(z.shape[0], -1)  # [N, T]: frames 0..T-1
    with torch.inference_mode():
        return to_rgb_uint8(G(z, t, c, **kwargs))


def grids(G: torch.nn.Module, checkpoint: Path, seed: int, dim: int = 0) -> tuple[list[Grid], list[str]]:
    """C.1-C.4 grids of the G3AN generator ``G``, and one line per grid left out with its reason."""
    K = int(G.c_dim)
    one_class = [0] if K else None
    base = {"checkpoint": str(checkpoint), "seed": seed}
    out, skipped = [], []
    c1 = GenerateConfig(**base, mode="same_content", num_videos=3, classes=one_class)
    out.append(Grid("g3an_c1", f"C.1: one $z_a$, three $z_m${' (class 0)' if K else ''}", render(G, c1),
                    [f"$z_m$ {i + 1}" for i in range(3)]))
    if K:
        per_class = [k for k in range(K) for _ in range(2)]
        c2 = GenerateConfig(**base, mode="same_content", num_videos=2 * K, classes=per_class)
        out.append(Grid("g3an_c2", "C.2: one $z_a$, each class with two $z_m$", render(G, c2),
                        [f"class {k}, $z_m$ {i % 2 + 1}" for i, k in enumerate(per_class)]))
    else:
        skipped.append("C.2 (conditional generation): skipped, the model is unconditional (model.num_classes=0)")
    for part, letter in (("appearance", "a"), ("motion", "m")):
        c3 = GenerateConfig(**base, mode=f"manipulate_{part}", dim=dim, classes=one_class)
        out.append(Grid(f"g3an_c3_{part}", f"C.3: {part}, dimension {dim} of $z_{letter}$ swept", render(G, c3),
                        [f"$z_{letter}$[{dim}] = {v:g}" for v in c3.values]))
    c4 = GenerateConfig(**base, mode="motion_switch")
    sets = [(0, 0), (1, 1), (0, 1), (1, 0)]  # (appearance, motion) of each row; the class goes with the motion
    out.append(Grid("g3an_c4", "C.4: motion switch (rows 3-4: rows 1-2 with motion switched)", render(G, c4),
                    [f"$z_{{a{a}}}$, $z_{{m{m}}}$" + (f", $c_{m}$" if K else "") for a, m in sets]))
    return out, skipped
