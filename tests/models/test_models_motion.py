"""Motion codes and the acyclic positional embedding: receptive field, bounds, continuity, acyclicity, chunking."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator

import pytest
import torch
from numerics import FP64, reorder_tolerance

from stylegan_v.models.config import MotionConfig, MotionKind, PeriodScheme
from stylegan_v.models.generator import Generator, generate_frames, time_chunks
from stylegan_v.models.motion import AcyclicMotion, LSTMMotion, MotionMapping
from stylegan_v.models.noise import counter_normal, seed_from_z
from stylegan_v.models.periods import cycle_length, init_periods, scheme_cycle_length


def test_n_anchors_consume_n_plus_20_noise_codes() -> None:
    fm = MotionMapping(in_dim=8, hidden_dim=8, code_dim=8, kernel_size=11, num_layers=2, lr_multiplier=0.01)
    for n in (1, 5, 40):
        assert fm(torch.randn(2, n + 20, 8)).shape == (2, n, 8)
    with pytest.raises(RuntimeError):
        fm(torch.randn(2, 20, 8))  # 20 codes are not enough for a single anchor


def test_counter_noise_is_deterministic_standard_normal() -> None:
    seed = torch.tensor([3, 4])
    idx = torch.arange(0, 400)[None].expand(2, -1)
    a = counter_normal(seed, idx, 512)
    # any sub-range asks for the same codes: index 100..109 of the full draw
    b = counter_normal(seed, torch.arange(100, 110)[None].expand(2, -1), 512)
    assert torch.equal(a[:, 100:110], b)
    assert not torch.allclose(a[0], a[1])  # different videos, different codes
    assert abs(a.mean().item()) < 0.01 and abs(a.std().item() - 1.0) < 0.01  # 409 600 samples
    z = torch.randn(4, 16)
    assert torch.equal(seed_from_z(z), seed_from_z(z.clone())) and seed_from_z(z).unique().numel() == 4


def test_period_bound_tanh_plus_one_in_open_0_2() -> None:
    torch.manual_seed(0)
    m = AcyclicMotion(MotionConfig(noise_dim=16, code_dim=16, embed_dim=16))
    u = torch.randn(1000, 16) * 100.0  # extreme codes saturate tanh
    scale = torch.tanh(m.to_periods(u)) + 1.0
    assert scale.min() >= 0.0 and scale.max() <= 2.0
    assert m.freqs.double().allclose(2 * math.pi / init_periods("geometric", 8, 16.0, 1024.0))


def test_period_schemes_and_cycle_lengths() -> None:
    lin = init_periods(PeriodScheme.linear, 256, 8.0, 1024.0)
    assert lin[0] == 8.0 and lin[-1] == pytest.approx(8.0 + 255 / 256 * 1016) and lin[-1] < 1024.0  # eq. 6
    geo = init_periods(PeriodScheme.geometric, 256, 16.0, 1024.0)  # the official layout: longest period first
    assert geo[0] == pytest.approx(1024.0) and geo[-1] == pytest.approx(16.0)
    assert (geo[:-1] / geo[1:]).allclose(torch.full([255], 2 ** (6 / 255), dtype=torch.float64))
    # exponential: periods 4, 8, ..., 2^(n+1): the cycle is the largest period (Figure 9a: n = 5 -> 64 frames)
    assert scheme_cycle_length(PeriodScheme.exponential, 5) == 64
    assert scheme_cycle_length(PeriodScheme.exponential, 10) == 2**11
    # linear: lcm of the rounded periods 8, 12, 16, 20 for n = 4 between 8 and 24
    assert init_periods(PeriodScheme.linear, 4, 8.0, 24.0).tolist() == [8.0, 12.0, 16.0, 20.0]
    assert scheme_cycle_length(PeriodScheme.linear, 4, 8.0, 24.0) == math.lcm(8, 12, 16, 20) == 240
    assert cycle_length(torch.tensor([6.0, 10.0, 15.0])) == 30
    # the default scheme and the paper's have no cycle within 10 000 frames (their cycles are astronomically long)
    assert scheme_cycle_length(PeriodScheme.geometric, 256, 16.0, 1024.0) > 10**100
    assert scheme_cycle_length(PeriodScheme.linear, 256, 8.0, 1024.0) > 10**100


def _float64_motion(**kw: object) -> AcyclicMotion:
    torch.manual_seed(0)
    return AcyclicMotion(MotionConfig(**kw)).double()


@pytest.mark.parametrize("reading", ["official", "paper_text"])
def test_embedding_is_continuous_at_every_anchor(reading: str) -> None:
    """Left and right limits at anchors t = 16 j agree to 1e-6 (float64, eps = 1e-9 frames)."""
    paper = dict(period_scheme="linear", omega_min=8.0, code_distance=16, amplitude_head=True,
                 wave_code="interpolated")
    m = _float64_motion(**(paper if reading == "paper_text" else {}))  # 512-d, kernel 11, d = 16
    anchors = torch.arange(1, 41, dtype=torch.float64) * 16.0  # 40 anchors
    eps = 1e-9
    t = torch.stack([anchors - eps, anchors, anchors + eps], dim=1).reshape(1, -1)  # one video
    seed = torch.tensor([123])
    v = m(seed, t).reshape(40, 3, -1)
    left_jump = (v[:, 0] - v[:, 1]).abs().max().item()
    right_jump = (v[:, 2] - v[:, 1]).abs().max().item()
    assert left_jump < 1e-6 and right_jump < 1e-6
    # while one frame apart the embedding does move (the check above is not vacuous)
    v1 = m(seed, (anchors + 1.0)[None])
    assert (v1[0] - v[:, 1]).abs().max() > 1e-2


def _cycle_mismatch(v: torch.Tensor, max_period: int) -> torch.Tensor:
    """mean_t ||v(t + tau) - v(t)||^2 / mean ||v||^2 for tau = 1..max_period (FFT autocorrelation): 0 at a cycle."""
    n = v.shape[0]
    v = v - v.mean(dim=0)
    f = torch.fft.rfft(v, n=2 * n, dim=0)
    corr = torch.fft.irfft(f * f.conj(), n=2 * n, dim=0)[:n].sum(dim=1)  # sum_t v(t + tau) . v(t)
    sq = v.square().sum(dim=1)
    cs = torch.cat([torch.zeros(1, dtype=v.dtype), sq.cumsum(0)])
    taus = torch.arange(1, max_period + 1)
    head = cs[n - taus]  # sum_{t < n - tau} ||v(t)||^2
    tail = cs[n] - cs[taus]  # sum_{t >= tau} ||v(t)||^2
    return (head + tail - 2 * corr[taus]) / (n - taus) / sq.mean()


def test_no_cycle_within_10000_frames_for_default_scheme() -> None:
    m = _float64_motion()
    with torch.no_grad():
        v = m(torch.tensor([7]), torch.arange(10_000, dtype=torch.float64)[None])[0]  # [10000, 512]
    mismatch = _cycle_mismatch(v, 5_000)
    assert mismatch[0] > 0.01  # neighbouring frames differ: the embedding moves
    assert mismatch[15:].min() > 1.0  # and no shift of a code distance or more makes it repeat itself
    # the detector does find a cycle: the plain exponential embedding with 5 periods repeats every 64 frames
    periods = init_periods(PeriodScheme.exponential, 5)
    t = torch.arange(10_000, dtype=torch.float64)[:, None]
    plain = torch.cat([torch.sin(2 * math.pi * t / periods), torch.cos(2 * math.pi * t / periods)], dim=1)
    mismatch = _cycle_mismatch(plain, 5_000)
    assert int(torch.nonzero(mismatch < 1e-9)[0]) + 1 == 64 and mismatch[:63].min() > 0.05


def test_progressive_frequencies_open_low_first() -> None:
    m = AcyclicMotion(MotionConfig(noise_dim=8, code_dim=8, embed_dim=16, progressive_frequencies=True,
                                   progressive_start=0.25, progressive_end=0.5))
    mask0 = m.frequency_mask()
    assert mask0.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # longest periods (first, geometric) open first
    m.progress.fill_(0.5)
    assert m.frequency_mask().eq(1.0).all()


def test_lstm_ema_smooths_hidden_states() -> None:
    torch.manual_seed(0)
    cfg = dict(noise_dim=8, code_dim=8, embed_dim=8, code_distance=1)
    plain = LSTMMotion(MotionConfig(kind=MotionKind.lstm, **cfg))
    ema = LSTMMotion(MotionConfig(kind=MotionKind.lstm_ema, lstm_ema_beta=0.9, **cfg))
    ema.load_state_dict(plain.state_dict())
    t = torch.arange(64.0)[None]
    seed = torch.tensor([1])
    with torch.no_grad():
        rough = plain(seed, t).diff(dim=1).abs().mean()
        smooth = ema(seed, t).diff(dim=1).abs().mean()
    assert smooth < 0.5 * rough


@pytest.mark.parametrize("kind", ["acyclic", "hierarchical", "lstm"])
def test_1024_frame_video_in_chunks_equals_all_at_once(tiny, kind: str) -> None:
    """Frames from 11 chunks of 100 (straddling anchors) equal one 1024-frame call: the motion embedding, whose
    codes each chunk draws for itself, in float64 to its rounding; the fp32 frames to fp32 rounding."""
    torch.manual_seed(0)
    cfg = tiny("resolution=8", f"motion.kind={kind}", "motion.hierarchical_distances=[16,64]")
    G = Generator(cfg, 8, 3).eval()
    z = torch.randn(2, G.z_dim)
    seed = seed_from_z(z)
    motion = copy.deepcopy(G.motion).double()

    def embedding(chunks: Iterator[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([motion(seed, t.double()) for t in chunks], dim=1)

    # A chunk's codes come from conv1d sums of 32 x 11 = 352 terms (2 layers, then the wave heads) that round
    # differently with the chunk's length; a sine amplifies a relative error of its frequency by its angle,
    # at most 2 x 2π/16 rad per frame (tanh + 1 < 2 times the shortest period's) x 1024 frames ≈ 804 rad.
    angle = 2 * 2 * math.pi / 16 * 1024
    tolerance = reorder_tolerance(terms=352, depth=3, scale=angle, unit=FP64, worst_case=True)  # 5e-10
    whole = embedding(time_chunks(2, 1024, 1024))
    torch.testing.assert_close(embedding(time_chunks(2, 1024, 100)), whole, atol=tolerance, rtol=0)
    # any frame rate and offset: t = 500.25, 500.75, ... in chunks equals all at once as well
    half = embedding(time_chunks(2, 64, 64, start=500.25, step=0.5))
    torch.testing.assert_close(embedding(time_chunks(2, 64, 7, start=500.25, step=0.5)), half, atol=tolerance, rtol=0)
    assert (whole[:, 1:] - whole[:, :-1]).abs().max() > 1e6 * tolerance  # the embedding moves: the check has teeth

    full = torch.cat(list(generate_frames(G, z, time_chunks(2, 1024, 1024))), dim=1)
    chunks = list(generate_frames(G, z, time_chunks(2, 1024, 100)))
    assert len(chunks) == 11 and full.shape == (2, 1024, 3, 8, 8)
    # fp32 frames: the motion path's rounding as above, amplified by the same angle, then the synthesis, 10
    # reductions deep (mapping 2, style affine, 3 convolutions and their demodulations, toRGB), the largest of
    # 48 x 3 x 3 = 432 terms, at the frames' magnitude.
    tolerance = (reorder_tolerance(terms=352, depth=3, scale=angle)
                 + reorder_tolerance(terms=432, depth=10, scale=full.abs().max().item()))  # ≈ 6e-3
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, atol=tolerance, rtol=0)
    half = list(generate_frames(G, z, time_chunks(2, 64, 64, start=500.25, step=0.5)))[0]
    pieces = torch.cat(list(generate_frames(G, z, time_chunks(2, 64, 7, start=500.25, step=0.5))), dim=1)
    torch.testing.assert_close(pieces, half, atol=tolerance, rtol=0)
