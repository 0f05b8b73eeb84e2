"""Code sets for latent analysis: which (appearance, motion, class) codes each row of a ``generate`` grid gets.

Two analyses, after the G3AN appendix: sweep one dimension of the appearance or the motion code over a range of
values, all else fixed (C.3), and swap the motion (with its class) between two sampled sets (C.4).

The row logic (:func:`sweep`, :func:`manipulate`, :func:`switch_motion`) is pure tensor code. What appearance and
motion mean is the model's: G3AN's z_a and z_m; StyleGAN-V's content code z and its motion (explicit motion noise
[L, noise_dim], whose dimension d is dimension d of every position, or a motion seed). :func:`sample`,
:func:`code_sizes` and :func:`g_inputs` hold that mapping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from stylegan_v.models.g3an import G3ANGenerator
from stylegan_v.models.generator import Generator
from stylegan_v.models.motion import AcyclicMotion, LSTMMotion
from stylegan_v.models.noise import seed_from_z

PARTS = ("appearance", "motion")


@dataclass(frozen=True)
class CodeSets:
    """One code set per row: appearance [N, ...], motion [N, ...] and one-hot classes [N, C] (None: unconditional)."""

    appearance: torch.Tensor
    motion: torch.Tensor
    classes: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.appearance.shape[0]
        assert self.motion.shape[0] == n, f"{n} appearance codes but {self.motion.shape[0]} motion codes"
        assert self.classes is None or self.classes.shape[0] == n, f"{n} code sets but {self.classes.shape[0]} classes"

    def __len__(self) -> int:
        return self.appearance.shape[0]

    def select(self, rows: Sequence[int]) -> CodeSets:
        """The code sets ``rows``, in that order (repeats allowed)."""
        idx = torch.tensor(list(rows), dtype=torch.long)
        return CodeSets(self.appearance[idx], self.motion[idx], None if self.classes is None else self.classes[idx])

    def to(self, device: torch.device | str) -> CodeSets:
        return CodeSets(self.appearance.to(device), self.motion.to(device),
                        None if self.classes is None else self.classes.to(device))


def sweep(base: torch.Tensor, dim: int, values: Sequence[float]) -> torch.Tensor:
    """base [...] -> [V, ...]: one copy of base per value, with entry ``dim`` of its last axis set to the value.

    For motion noise [L, noise_dim] that is dimension ``dim`` at every position: the whole motion moves along it.
    """
    assert 0 <= dim < base.shape[-1], f"dim {dim} outside a code of {base.shape[-1]} dimensions"
    rows = base.unsqueeze(0).repeat(len(values), *[1] * base.ndim)
    rows[..., dim] = torch.tensor(list(values), dtype=base.dtype).reshape(-1, *[1] * (base.ndim - 1))
    return rows


def manipulate(base: CodeSets, part: str, dim: int, values: Sequence[float]) -> CodeSets:
    """One row per value from the single set ``base``: its ``part`` code swept along ``dim``, the rest shared."""
    assert len(base) == 1, f"manipulate starts from one code set, got {len(base)}"
    shared = base.select([0] * len(values))
    if part == "appearance":
        return CodeSets(sweep(base.appearance[0], dim, values), shared.motion, shared.classes)
    elif part == "motion":
        return CodeSets(shared.appearance, sweep(base.motion[0], dim, values), shared.classes)
    else:
        raise ValueError(f"unknown code part {part!r}; valid: {PARTS}")


def switch_motion(pair: CodeSets) -> CodeSets:
    """(a0, m0, c0), (a1, m1, c1) -> those two rows, then (a0, m1, c1) and (a1, m0, c0).

    The class travels with the motion: it names the kind of motion (G3AN's categories are actions).
    """
    assert len(pair) == 2, f"motion_switch needs two code sets, got {len(pair)}"
    motion_rows = [0, 1, 1, 0]
    return CodeSets(pair.appearance[[0, 1, 0, 1]], pair.motion[motion_rows],
                    None if pair.classes is None else pair.classes[motion_rows])


def code_sizes(G: nn.Module) -> dict[str, int]:
    """Dimensions of the appearance and the motion code of G (motion 0: G has no motion input)."""
    if isinstance(G, G3ANGenerator):
        return {"appearance": G.cfg.za_dim, "motion": G.cfg.zm_dim}
    elif isinstance(G, Generator):
        return {"appearance": G.z_dim, "motion": 0 if G.motion is None else G.cfg.motion.noise_dim}
    else:
        raise TypeError(f"latent analysis knows G3AN and StyleGAN-V generators, not {type(G).__name__}")


def motion_noise_rows(G: nn.Module, last: float) -> int:
    """Positions L of explicit motion noise [L, noise_dim] that frames at times 0..``last`` read."""
    motion = G.motion
    if isinstance(motion, AcyclicMotion):
        if len(motion.layers) != 1:
            raise ValueError("manipulate_motion sets one layer of motion noise; motion.kind=hierarchical has "
                             f"{len(motion.layers)}")
        layer = motion.layers[0]
        anchors = math.floor(last / layer.distance) + 2  # anchors l and l + 1 of the last frame
        return layer.mapping.num_noise_codes(anchors) + 1  # + 1: the float32 frame time may round up an anchor
    elif isinstance(motion, LSTMMotion):
        return math.floor(last / motion.distance) + 3  # steps to the last frame's right anchor, + 1 as above
    else:
        raise ValueError(f"{type(motion).__name__} takes no explicit motion noise")


def sample(G: nn.Module, n: int, gen: torch.Generator, classes: torch.Tensor | None = None,
           noise_until: float | None = None) -> CodeSets:
    """n random code sets for G. StyleGAN-V's motion: explicit noise [n, L, noise_dim] for frames up to time
    ``noise_until``, or (None) the motion seeds [n] its content codes imply, which cover any time span and every
    motion kind."""
    sizes = code_sizes(G)
    appearance = torch.randn(n, sizes["appearance"], generator=gen)
    if isinstance(G, G3ANGenerator):
        motion = torch.randn(n, sizes["motion"], generator=gen)
    elif noise_until is None:
        motion = seed_from_z(appearance)
    else:
        motion = torch.randn(n, motion_noise_rows(G, noise_until), sizes["motion"], generator=gen)
    return CodeSets(appearance, motion, classes)


def g_inputs(G: nn.Module, sets: CodeSets) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """(z, c, keyword arguments) that make G render ``sets``, one video per row."""
    if isinstance(G, G3ANGenerator):
        return torch.cat([sets.appearance, sets.motion], dim=1), sets.classes, {}  # z = [z_a, z_m]
    elif isinstance(G, Generator):
        key = "motion_seed" if sets.motion.dtype == torch.long else "motion_noise"
        return sets.appearance, sets.classes, {key: sets.motion}
    else:
        raise TypeError(f"latent analysis knows G3AN and StyleGAN-V generators, not {type(G).__name__}")
