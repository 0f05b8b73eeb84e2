"""Video-consistent ADA augmentation: the official pipeline's outputs, one transform per video, p = 0 identity,
twice differentiable.

``tests/fixtures/official_ada.pt`` holds outputs of the official StyleGAN-V ``AugmentPipe``
(``src/training/augment.py`` with its ``torch_utils`` on the CPU, fp32, torch 2.13, run outside this repository;
the only change: two lines keeping the drawn ``G_inv`` and ``C`` matrices). Input: a fixed ``[4, 3, 3, 12, 16]``
video batch (gradients, a bright square, noise). Cases: each of the twelve ``bgc`` transforms alone at p = 1,
then all of ``bgc`` at p = 0.5, 1 and 1.3 in the official video-consistent layout ``[n, k * 3, h, w]``, at
p = 0.7 per frame ``[n * k, 3, h, w]``, and at p = 1 on one-channel frames; each after ``torch.manual_seed(seed)``.
Every case stores its seed, strengths, p, the drawn matrices and the output. How it was made is in
``tests/fixtures/official_ada.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stylegan_v.data.augment import LOWPASS, AugmentPipe, apply_color, apply_geometric, grid_sample
from stylegan_v.data.video_dataset import VideoDataset

FIXTURE = Path(__file__).parents[1] / "fixtures" / "official_ada.pt"
GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
U = 2.0**-24  # float32 unit roundoff

GEOMETRIC_ONLY = dict(brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0)


def _static_videos(samples_dir: Path, batch: int, frames: int = 3) -> torch.Tensor:
    """``[B, k, 3, H, W]`` in [-1, 1]: the same real frame repeated over time and over videos."""
    frame = torch.from_numpy(VideoDataset(samples_dir).read_frames(0, [5])[0]).permute(2, 0, 1).float() / 127.5 - 1
    return frame.expand(batch, frames, -1, -1, -1).contiguous()


def _real_videos(samples_dir: Path) -> torch.Tensor:
    ds = VideoDataset(samples_dir)
    clips = [torch.from_numpy(ds.read_frames(i, [0, 10, 20])) for i in range(4)]
    return torch.stack(clips).permute(0, 1, 4, 2, 3).float() / 127.5 - 1  # [B,k,H,W,C] -> [B,k,C,H,W]


@pytest.mark.parametrize("video_consistent", [True, False])
def test_p_zero_is_exact_identity(samples_dir: Path, video_consistent: bool) -> None:
    x = _real_videos(samples_dir)
    assert torch.equal(AugmentPipe(p=0.0, video_consistent=video_consistent)(x), x)


def test_same_transform_for_every_frame_of_a_video(samples_dir: Path) -> None:
    torch.manual_seed(0)
    x = _static_videos(samples_dir, batch=8)
    y = AugmentPipe(p=1.0, video_consistent=True)(x)
    assert torch.allclose(y[:, 1:], y[:, :1].expand_as(y[:, 1:]), atol=1e-5)  # frames of a video stay equal
    differing_pairs = sum(not torch.allclose(y[i, 0], y[j, 0], atol=1e-3) for i in range(8) for j in range(i))
    assert differing_pairs == 28  # every pair of videos got a different transform
    assert (y - x).abs().mean() > 0.05


def test_per_frame_mode_differs_within_a_video(samples_dir: Path) -> None:
    torch.manual_seed(0)
    y = AugmentPipe(p=1.0, video_consistent=False)(_static_videos(samples_dir, batch=4))
    assert all(not torch.allclose(y[b, 0], y[b, 1], atol=1e-3) for b in range(4))


def test_geometry_is_consistent_on_moving_videos(samples_dir: Path) -> None:
    """Every frame of a moving video gets its video's transform: the result equals each frame transformed
    alone with the matrix drawn for its video (the official pipeline blurs slightly, so even a flip is not an
    exact mirror image; comparing with the same pipeline per frame is exact up to rounding)."""
    x = _real_videos(samples_dir)
    B, K, C, H, W = x.shape
    pipe = AugmentPipe(p=1.0, **GEOMETRIC_ONLY)
    torch.manual_seed(1)
    y = pipe(x)
    torch.manual_seed(1)
    G_inv = pipe.sample_geometric(B, W, H, x.device)  # the same draws as the call above
    assert not torch.allclose(G_inv, torch.eye(3).expand_as(G_inv))
    for b in range(B):
        for k in range(K):
            alone = apply_geometric(x[b, k][None], G_inv[b:b + 1])[0]
            # The same sums per pixel in another blocking: a few roundings of values <= 4 in magnitude.
            torch.testing.assert_close(y[b, k], alone, atol=64 * U * 4, rtol=0)


def test_integer_translation_moves_all_frames_alike(samples_dir: Path) -> None:
    torch.manual_seed(2)
    x = _real_videos(samples_dir)
    only = dict(GEOMETRIC_ONLY, xflip=0, rotate90=0, scale=0, rotate=0, aniso=0, xfrac=0)
    y = AugmentPipe(p=1.0, **only)(x)
    for b in range(x.shape[0]):
        found = [(dx, dy) for dx in range(-8, 9) for dy in range(-8, 9)
                 if torch.allclose(y[b, :, :, 10:-10, 10:-10],
                                   x[b, :, :, 10 - dy:x.shape[-2] - 10 - dy, 10 - dx:x.shape[-1] - 10 - dx], atol=1e-5)]
        assert len(found) == 1  # one shift explains every frame of the video


def test_differentiable_and_p_is_an_adaptive_buffer(samples_dir: Path) -> None:
    x = _real_videos(samples_dir).requires_grad_(True)
    pipe = AugmentPipe(p=0.5)
    pipe(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert "p" in pipe.state_dict() and float(pipe.p) == 0.5
    assert pipe.adjust(0.9, num_videos=50_000, speed_kimg=500) == pytest.approx(0.6)  # D overfits: more augmentation
    assert pipe.adjust(0.1, num_videos=50_000, speed_kimg=500) == pytest.approx(0.5)
    pipe.set_p(0.95)
    assert pipe.adjust(0.9, num_videos=10_000, speed_kimg=100) == pytest.approx(1.05)  # no cap at 1 (StyleGAN2-ADA)
    assert pipe.adjust(0.1, num_videos=10_000, speed_kimg=100) == pytest.approx(0.95)
    pipe.set_p(0.05)
    assert pipe.adjust(0.1, num_videos=10_000, speed_kimg=100) == 0.0  # but never below 0
    pipe.set_p(-3)
    assert float(pipe.p) == 0.0


def test_grid_sample_backward_is_differentiable_like_torchs() -> None:
    """R1 through augmentation differentiates the sampler's backward; ours matches PyTorch's (CPU) result."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    w = torch.randn(2, 3, 8, 8, requires_grad=True)
    theta = torch.eye(2, 3)[None].repeat(2, 1, 1) + 0.1 * torch.randn(2, 2, 3)
    grid = torch.nn.functional.affine_grid(theta, [2, 3, 8, 8], align_corners=False)
    results = []
    for sample in (grid_sample, lambda a, g: torch.nn.functional.grid_sample(
            a, g, mode="bilinear", padding_mode="zeros", align_corners=False)):
        w.grad = None
        y = sample(x, grid)
        (gx,) = torch.autograd.grad((y * w).sum(), x, create_graph=True)
        gx.square().sum().backward()
        results.append((y.detach(), gx.detach(), w.grad.clone()))
    for ours, torchs in zip(*results):
        torch.testing.assert_close(ours, torchs)
    assert results[0][2].abs().sum() > 0


def test_grayscale_videos_get_the_colour_transform_of_their_gray_rgb_pixels() -> None:
    gray = torch.rand(3, 2, 1, 16, 16) * 2 - 1
    pipe = AugmentPipe(p=0.9)
    torch.manual_seed(5)
    ours = pipe(gray)
    torch.manual_seed(5)  # the same draws: the transforms do not depend on the channel count
    rgb = pipe(gray.expand(-1, -1, 3, -1, -1).contiguous())
    assert ours.shape == gray.shape
    torch.testing.assert_close(ours, rgb.mean(dim=2, keepdim=True), atol=1e-5, rtol=0)
    assert not torch.allclose(ours, gray)


# ---------------------------------------------------------------------------------- parity with the official code

@pytest.fixture(scope="module")
def official() -> dict:
    return torch.load(FIXTURE, weights_only=True)


def _case_input(official: dict, case: dict) -> tuple[torch.Tensor, bool]:
    """The case's videos [B, k, C, H, W] and whether its layout is video-consistent."""
    x = official["input"]
    if case["layout"] == "video":
        return x, True
    elif case["layout"] == "frames":
        return x, False
    elif case["layout"] == "gray_frames":
        return x[:, :, :1].contiguous(), False
    else:
        raise ValueError(f"unknown fixture layout {case['layout']!r}")


def _pipe(case: dict, video_consistent: bool) -> AugmentPipe:
    strengths = {name: case["strengths"].get(name, 0.0) for name in GEOMETRIC + COLOUR}
    return AugmentPipe(p=case["p"], video_consistent=video_consistent, **strengths)


def _execution_bound(colour: torch.Tensor, x: torch.Tensor) -> float:
    """How far two float32 evaluations of the same pipeline can drift apart: a pixel's value is a chain of
    4 FIR passes of 12 taps, 4 bilinear taps and 3 colour terms (55 roundings), each at most U of the
    magnitude carried, which the filters amplify at most by their L1 gains (upsampling: 2 x the larger
    polyphase half per pass; downsampling: the whole filter) and the colour map by its largest row sum."""
    f = torch.tensor(LOWPASS, dtype=torch.float64)
    up = 2 * max(f[0::2].abs().sum(), f[1::2].abs().sum())
    gain = float(up**2 * f.abs().sum() ** 2) * float(colour.abs().sum(dim=-1).max())
    return 2 * 55 * U * gain * float(x.abs().max())


def test_official_fixture_covers_every_transform(official: dict) -> None:
    cases = official["cases"]
    assert {name for name in GEOMETRIC + COLOUR if name in cases} == set(GEOMETRIC + COLOUR)
    assert {case["layout"] for case in cases.values()} == {"video", "frames", "gray_frames"}
    assert any(case["p"] > 1 for case in cases.values())


@pytest.mark.parametrize("name", [
    *GEOMETRIC, *COLOUR, "bgc_p0.5", "bgc_p1", "bgc_p1.3", "bgc_frames_p0.7", "bgc_gray_frames_p1"])
def test_same_parameters_give_the_official_output(official: dict, name: str) -> None:
    """With the official run's drawn matrices, our pipeline's output equals the official one (within 1e-4)."""
    case = official["cases"][name]
    videos, video_consistent = _case_input(official, case)
    B, K, C, H, W = videos.shape
    x = videos.reshape(case["output"].shape[0], -1, H, W)  # the official layout of the case
    if any(case["strengths"].get(t, 0) for t in GEOMETRIC):
        x = apply_geometric(x, case["G_inv"])
    if any(case["strengths"].get(t, 0) for t in COLOUR):
        x = apply_color(x, case["C"], C)
    bound = _execution_bound(case["C"], videos)
    assert bound < 1e-4  # the parity the official comparison asks for
    torch.testing.assert_close(x, case["output"], atol=bound, rtol=0)
    assert (x - videos.reshape(x.shape)).abs().max() > 0.1  # the case does transform


@pytest.mark.parametrize("name", [*GEOMETRIC, *COLOUR, "bgc_p0.5", "bgc_p1.3", "bgc_frames_p0.7", "bgc_gray_frames_p1"])
def test_same_seed_draws_the_official_parameters(official: dict, name: str) -> None:
    """Draws follow the official order and shapes: the same CPU seed gives the official matrices, and the pipe
    (draws + execution) gives the official output."""
    case = official["cases"][name]
    videos, video_consistent = _case_input(official, case)
    B, K, C, H, W = videos.shape
    pipe = _pipe(case, video_consistent)
    n = case["output"].shape[0]
    torch.manual_seed(case["seed"])
    G_inv = pipe.sample_geometric(n, W, H, videos.device)
    colour = pipe.sample_color(n, C, videos.device)
    G_inv = torch.eye(3).expand(n, 3, 3) if G_inv is None else G_inv
    colour = torch.eye(4).expand(n, 4, 4) if colour is None else colour
    # At most 10 products of 3x3 (4x4) matrices, each rounding 3 (4) terms to U of their magnitude.
    torch.testing.assert_close(G_inv, case["G_inv"], atol=10 * 3 * U * float(case["G_inv"].abs().max()) ** 2, rtol=0)
    torch.testing.assert_close(colour, case["C"], atol=10 * 4 * U * float(case["C"].abs().max()) ** 2, rtol=0)
    torch.manual_seed(case["seed"])
    y = pipe(videos)
    # The drawn matrices agree to rounding; a coordinate moved by d pixels changes a bilinear sample by at most
    # d x the largest step between neighbouring samples (2 max|x| x the filter gain), beside the execution bound.
    d = float((G_inv - case["G_inv"]).abs().max()) * (H + W + 1)
    bound = _execution_bound(case["C"], videos) + d * 2 * float(videos.abs().max()) * 4
    torch.testing.assert_close(y, case["output"].reshape(y.shape), atol=bound, rtol=0)


def test_r1_through_the_pipeline_is_twice_differentiable() -> None:
    """R1 differentiates D's input gradient through the augmentation; the whole geometric and colour stage
    passes PyTorch's numerical check of second derivatives (float64)."""
    torch.manual_seed(3)
    pipe = AugmentPipe(p=1.0)
    G_inv = pipe.sample_geometric(2, 5, 4, torch.device("cpu"))
    colour = pipe.sample_color(2, 3, torch.device("cpu"))
    assert not torch.allclose(G_inv, torch.eye(3).expand_as(G_inv))
    x = torch.randn(2, 6, 4, 5, dtype=torch.float64, requires_grad=True)  # 2 videos of 2 RGB frames
    augment = lambda v: apply_color(apply_geometric(v, G_inv), colour, 3)
    # fast mode: the Jacobians projected on random vectors (the full check takes minutes on a busy CI machine)
    assert torch.autograd.gradgradcheck(augment, (x,), eps=1e-6, atol=1e-5, fast_mode=True)
