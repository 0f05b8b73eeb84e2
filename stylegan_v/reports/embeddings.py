"""Figure 9's curves from the model's own motion code: initial period schemes and the acyclic embedding's parts.

``AcyclicMotion.forward`` returns only the final embedding; the two intermediate curves of the figure (raw
waves, stitched without aligners) are recomputed here from its public pieces (code layers, wave heads,
``freqs``, ``phase_scales``), and :func:`acyclic_parts` checks that raw - stitch + aligners reproduces
``forward`` exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from stylegan_v.models.config import MotionConfig, MotionKind, PeriodScheme
from stylegan_v.models.motion import AcyclicMotion
from stylegan_v.models.periods import init_periods, scheme_cycle_length

ALIASING_BOUND = 4.0  # frames: appendix B.3, a period under 4 frames aliases in time


@dataclass(frozen=True)
class Figure9Panel:
    """One of panels (a)-(c): a period scheme with the settings that give the cycle length its caption states."""

    letter: str
    label: str
    scheme: str
    waves: int  # d in the caption
    omega_min: float = 16.0  # frames (linear scheme)
    omega_max: float = 1024.0  # frames (linear scheme)
    random_xi: float = 1.0  # variance of sigma ~ N(0, xi) (random scheme)
    random_seed: int = 0  # draw of sigma (random scheme)

    def settings(self) -> str:
        if self.scheme == "random":
            return f"σ ~ N(0, {self.random_xi:g}·I), seed {self.random_seed}"
        if self.scheme == "linear":
            return f"eq. 6, ω_min = {self.omega_min:g}, ω_max = {self.omega_max:g} frames (no random draw)"
        return f"periods 2^2 … 2^{self.waves + 1} frames (no random draw)"


# The caption's settings. (b): the first seed whose N(0, I) draw has the caption's cycle of 120 frames and no
# period under the aliasing bound (seed 106: periods 6.2, 23.8, 15.4 frames). (c): eq. 6 with d = 3 waves has a
# cycle of 352 frames for whole-frame omegas only at omega_min = 11, omega_max = 43 (periods 11, 21.7, 32.3); the
# paper's omega_max = 2^10 gives 352 for no omega_min, its third period alone being over 682 frames.
FIGURE9_PANELS = (
    Figure9Panel("a", "Exponentially spaced periods", "exponential", 5),
    Figure9Panel("b", "Random periods", "random", 3, random_xi=1.0, random_seed=106),
    Figure9Panel("c", "Linearly spaced periods (ours)", "linear", 3, omega_min=11.0, omega_max=43.0),
)
ACYCLIC_SCALING = FIGURE9_PANELS[2]  # (d)-(f) use the linear scaling of (c)


@dataclass
class SchemeCurves:
    scheme: str
    t: torch.Tensor  # [T] frames
    waves: torch.Tensor  # [T, n] sin(sigma_i t)
    periods: torch.Tensor  # [n] frames
    cycle_length: int  # the model's scheme_cycle_length


def scheme_curves(panel: Figure9Panel, frames: int) -> SchemeCurves:
    args = (panel.waves, panel.omega_min, panel.omega_max, panel.random_xi, panel.random_seed)
    periods = init_periods(PeriodScheme(panel.scheme), *args)
    t = torch.linspace(0.0, float(frames), 4 * frames + 1, dtype=torch.float64)
    sigma = 2.0 * math.pi / periods
    return SchemeCurves(panel.scheme, t, torch.sin(t[:, None] * sigma[None]), periods,
                        scheme_cycle_length(panel.scheme, *args))


@dataclass
class AcyclicParts:
    t: torch.Tensor  # [T] frames
    raw: torch.Tensor  # [T, n] sin(omega_t t + phi_t): the waves before stitching
    stitched: torch.Tensor  # [T, n] raw minus its interpolation between anchors (zero at every anchor)
    ours: torch.Tensor  # [T, n] stitched + aligners = AcyclicMotion.forward (sin half)
    anchors: torch.Tensor  # [A] anchor times t_j = j d in range
    cycle_length_init: int  # the model's cycle length of the initial (linear) periods, before F_m modulates them


def small_motion_config(waves: int, code_distance: int, scaling: Figure9Panel = ACYCLIC_SCALING) -> MotionConfig:
    """The motion module with ``waves`` sin/cos pairs (the figure draws d = 3), small codes (fast) and the linear
    scaling of panel (c), as the caption of (f) says; everything else as the official model."""
    return MotionConfig(kind=MotionKind.acyclic, noise_dim=16, code_dim=16, embed_dim=2 * waves,
                        code_distance=code_distance, period_scheme=PeriodScheme.linear,
                        omega_min=scaling.omega_min, omega_max=scaling.omega_max)


def acyclic_parts(frames: int, waves: int = 3, code_distance: int = 16, seed: int = 0) -> AcyclicParts:
    cfg = small_motion_config(waves, code_distance)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        motion = AcyclicMotion(cfg).eval()
    t = torch.linspace(0.0, float(frames), 4 * frames + 1)[None]  # [1, T]
    video_seed = torch.tensor([seed], dtype=torch.int64)
    with torch.no_grad():
        u_l, u_r, aligners = 0.0, 0.0, 0.0
        for layer in motion.layers:
            left_code, right_code, a = layer(video_seed, t, None, None)
            u_l, u_r, aligners = u_l + left_code, u_r + right_code, aligners + a
        d = motion.stitch_distance
        left = torch.floor(t / d).double()
        alpha = (t.double() / d - left)[..., None]
        t_l = (left * d)[..., None]
        u_wave = u_l if cfg.wave_code.value == "left" else torch.lerp(u_l, u_r, alpha.float())
        freqs = ((torch.tanh(motion.to_periods(u_wave)) + 1.0) * motion.freqs).double()  # [1, T, n]
        offsets = (motion.to_phases(u_wave) * motion.phase_scales).double()
        scale = motion.frequency_mask().double()
        if motion.to_amplitudes is not None:
            scale = motion.to_amplitudes(u_wave).double() * scale

        def wave(tau: torch.Tensor) -> torch.Tensor:  # sin half of the raw embedding, [1, T, n]
            return torch.sin(freqs * tau + offsets)

        raw = wave(t.double()[..., None])
        stitched = scale * (raw - torch.lerp(wave(t_l), wave(t_l + d), alpha))
        ours = motion(video_seed, t)[..., :waves].double()  # the model's own forward, sin half
    rebuilt = stitched + aligners[..., :waves].double()
    assert torch.allclose(rebuilt, ours, atol=1e-4), "recomputed embedding drifted from AcyclicMotion.forward"
    anchors = torch.arange(0, frames + 1, d, dtype=torch.float64)
    return AcyclicParts(t[0].double(), raw[0], stitched[0], ours[0], anchors,
                        scheme_cycle_length("linear", waves, cfg.omega_min, cfg.omega_max))
