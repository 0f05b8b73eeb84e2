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


@dataclass
class SchemeCurves:
    scheme: str
    t: torch.Tensor  # [T] frames
    waves: torch.Tensor  # [T, n] sin(sigma_i t)
    periods: torch.Tensor  # [n] frames
    cycle_length: int  # the model's scheme_cycle_length


def scheme_curves(scheme: str, n: int, frames: int, cfg: MotionConfig) -> SchemeCurves:
    periods = init_periods(PeriodScheme(scheme), n, cfg.omega_min, cfg.omega_max, cfg.random_xi, cfg.random_seed)
    t = torch.linspace(0.0, float(frames), 4 * frames + 1, dtype=torch.float64)
    sigma = 2.0 * math.pi / periods
    cycle = scheme_cycle_length(scheme, n, cfg.omega_min, cfg.omega_max, cfg.random_xi, cfg.random_seed)
    return SchemeCurves(scheme, t, torch.sin(t[:, None] * sigma[None]), periods, cycle)


@dataclass
class AcyclicParts:
    t: torch.Tensor  # [T] frames
    raw: torch.Tensor  # [T, n] sin(omega_t t + phi_t): the waves before stitching
    stitched: torch.Tensor  # [T, n] raw minus its interpolation between anchors (zero at every anchor)
    ours: torch.Tensor  # [T, n] stitched + aligners = AcyclicMotion.forward (sin half)
    anchors: torch.Tensor  # [A] anchor times t_j = j d in range
    cycle_length_init: int  # the model's cycle length of the initial (linear) periods, before F_m modulates them


def small_motion_config(waves: int, code_distance: int) -> MotionConfig:
    """The motion module with ``waves`` sin/cos pairs (the figure draws d = 3), small codes (fast) and linearly
    spaced periods, as the figure's caption; everything else as the official model."""
    return MotionConfig(kind=MotionKind.acyclic, noise_dim=16, code_dim=16, embed_dim=2 * waves,
                        code_distance=code_distance, period_scheme=PeriodScheme.linear, omega_min=8.0)


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
