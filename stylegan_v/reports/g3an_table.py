"""G3AN appendix Table 1 read from the built generators: G_V's size after each G^3 module, beside the paper's.

Both generators are built from their default configs (``model=g3an``: the public code's, the default; and
``model.g3an_variant=appendix``) at 64 x 64, 16 frames, and run once on a zero code of batch 1 without
gradients; the sizes are those of the G_V features ``G.video`` returns after each module (after the fusion with
the other two streams and the F-SA, which keep G_V's size in the appendix reading but not in the public code),
and of the video it returns.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from stylegan_v.models.config import G3ANConfig, G3ANVariant
from stylegan_v.models.registry import build_models
from stylegan_v.reports.paper import PaperNumbers
from stylegan_v.reports.tables import DASH, Table

log = logging.getLogger(__name__)

PAPER_TABLE = "g3an_table1"  # its rows in paper_numbers.csv
COLUMNS = ("C", "H×W×T")
ROWS = tuple(f"G^3_{n}" for n in range(5)) + ("output",)
VARIANTS = (G3ANVariant.code, G3ANVariant.appendix)  # the default first


@dataclass(frozen=True)
class Size:
    channels: int
    height: int
    width: int
    frames: int

    def cells(self) -> tuple[str, str]:
        """As the appendix prints them: C, then H×W×T."""
        return str(self.channels), f"{self.height}×{self.width}×{self.frames}"


def g_v_sizes(cfg: G3ANConfig) -> list[Size]:
    """G_V's size after each of the five G^3 modules, then the output's, from one forward pass of G built from
    ``cfg`` (a zero code and, when conditional, class 0)."""
    G, _ = build_models(cfg, cfg.resolution, cfg.num_frames)
    z = torch.zeros(1, cfg.z_dim)
    c = torch.nn.functional.one_hot(torch.zeros(1, dtype=torch.long), cfg.num_classes).float() \
        if cfg.num_classes else None
    with torch.no_grad():
        video, feats = G.eval().video(z, c)
    sizes = []
    for x in [*feats, video]:
        _, C, T, H, W = x.shape  # [NCTHW]
        sizes.append(Size(C, H, W, T))
    return sizes


def table1(paper: PaperNumbers) -> Table:
    """Paper beside each generator variant; the last column names every cell that differs from the paper."""
    measured: dict[G3ANVariant, list[Size]] = {}
    for variant in VARIANTS:
        start = time.perf_counter()
        measured[variant] = g_v_sizes(G3ANConfig(g3an_variant=variant))
        log.info("g3an table 1: %s generator built and run in %.2f s", variant.value, time.perf_counter() - start)
    header = ["G_V after", "C (paper)", "H×W×T (paper)"]
    for variant in VARIANTS:
        header += [f"C ({variant.value})", f"H×W×T ({variant.value})"]
    table = Table(PAPER_TABLE, "G3AN appendix Table 1: output dimensions in G_V after each G^3 module, the paper's "
                  "beside the built generators'", header + ["vs paper"])
    for i, row in enumerate(ROWS):
        ours = {variant: measured[variant][i].cells() for variant in VARIANTS}
        cells = [row, *(paper.text(PAPER_TABLE, row, column) for column in COLUMNS)]
        for variant in VARIANTS:
            cells += list(ours[variant])
        table.add(cells + [_verdict(cells[1:3], ours)])
    table.notes = [
        "code: the public code's generator (`model.g3an_variant=code`, the default: the G3AN numbers of the "
        "StyleGAN-V paper come from running it); appendix: the appendix's reading (`model.g3an_variant=appendix`). "
        "Both from their default configs at 64², 16 frames.",
        "Measured: the G_V features `G.video(z)` returns after each module (after fusion and F-SA) and its video, "
        "for one zero code. The public code's G_V carries the appearance stream concatenated with video + motion "
        "(twice the module's channels) and reaches 16 frames after G^3_2 (4, 8, 16, 16, 16 frames).",
    ]
    return table


def _verdict(paper: list[str], ours: dict[G3ANVariant, tuple[str, str]]) -> str:
    if DASH in paper:
        return f"{DASH} (no paper value in {PAPER_TABLE})"
    differ = [f"{variant.value} {column} {mine} ≠ {theirs}" for variant, cells in ours.items()
              for column, mine, theirs in zip(COLUMNS, cells, paper) if mine != theirs]
    return "; ".join(differ) if differ else "equal"
