"""FID and video IS against outputs of the official code (``fixtures/README.md`` says how each was made).

The detectors' trained weights are not reachable, so the official code ran with stand-ins (``fixture_recipes``):
a recorder detector and a counter-driven generator for StyleGAN-V's metric code, hash-generated weights for
TGANv2's C3D and NVIDIA's Inception. The same stand-ins run here. These tests pin which frames and clips go in,
in what order, how they are preprocessed, the networks' structure, and the statistics and formulas; not the
trained weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fixture_recipes import (
    C3D_CLIP_SHAPES,
    C3D_LAYERS,
    FAKE_SET_VIDEOS,
    INCEPTION_IMAGE_SHAPES,
    REAL_VIDEOS,
    c3d_clip,
    c3d_layer_weights,
    c3d_mean,
    c3d_network_input,
    fake_video,
    fid_features,
    fixed_features,
    inception_image,
    inception_state,
    isv_probs,
    real_frame,
    set_frame,
)
from PIL import Image

from stylegan_v.metrics.c3d import C3D, preprocess_clips
from stylegan_v.metrics.config import MetricsConfig
from stylegan_v.metrics.fid import compute_fid
from stylegan_v.metrics.frechet import RunningGaussian, frechet_distance, gaussian_stats
from stylegan_v.metrics.inception import FIDInceptionV3, preprocess_images
from stylegan_v.metrics.inception_score import split_indices
from stylegan_v.metrics.isv import compute_isv
from stylegan_v.metrics.registry import get_metric, protocol_for
from stylegan_v.metrics.video_source import open_video_source

FIXTURES = Path(__file__).parent / "fixtures"
OFFICIAL = json.loads((FIXTURES / "fid_is_official.json").read_text())
EPS64 = np.finfo(np.float64).eps
EPS32 = float(np.finfo(np.float32).eps)


def _arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class StandIn(torch.nn.Module):
    """A detector that logs pixel (0, 0) of every frame it is given and answers ``fn`` of its input."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], temporal: bool) -> None:
        super().__init__()
        self.fn, self.temporal = fn, temporal
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # callers find the device from the parameters
        self.log: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x.detach().cpu().numpy()
        assert np.array_equal(a, np.round(a)), "detectors receive whole pixel values"
        pixel = a[:, :, :, 0, 0].transpose(0, 2, 1).reshape(-1, 3) if self.temporal else a[:, :, 0, 0]
        self.log.append(pixel.astype(np.int64))
        out = self.fn(a)
        self.outputs.append(out)
        return torch.from_numpy(out)

    def pixels(self) -> np.ndarray:
        return np.concatenate(self.log)


def generator(num_videos: int, num_frames: int, seed: int, step: int) -> Iterator[np.ndarray]:
    """The stand-in G of the fixtures: video k is fake_frame(k, t)."""
    for k in range(num_videos):
        yield fake_video(k, np.arange(num_frames) * step)


def _write_set(root: Path, videos: dict[str, int], frame: Callable[[int, int], np.ndarray]) -> Path:
    for i, (name, n) in enumerate(videos.items()):
        (root / name).mkdir(parents=True)
        for t in range(n):
            Image.fromarray(frame(i, t)).save(root / name / f"{t:06d}.png")
    return root


@pytest.fixture(scope="module")
def real_set(tmp_path_factory) -> Path:
    return _write_set(tmp_path_factory.mktemp("real"), REAL_VIDEOS, real_frame)


def _stats_bound(features: np.ndarray) -> float:
    """Absolute bound on the difference of two float64 covariance computations of these features: the official
    sums raw moments (sum x xᵀ / N − μ μᵀ), each sum of N terms off by at most N·eps·max x²."""
    return len(features) * EPS64 * float(np.max(np.abs(features))) ** 2


def _fid_rtol(s1: np.ndarray, s2: np.ndarray) -> float:
    """Relative bound for two float64 Fréchet distances from the same statistics: the square root of the
    product (Schur method) is accurate to about D·κ·eps, κ the product's condition number."""
    ev = np.abs(np.linalg.eigvals(s1 @ s2))
    return 10 * len(s1) * float(ev.max() / ev.min()) * EPS64


def test_fid50k_full_frames_statistics_and_value_are_the_officials(real_set: Path) -> None:
    ref = OFFICIAL["fid50k_full_generator"]
    arrays = _arrays("fid_is_official_features.npz")
    cfg = MetricsConfig(device="cpu", progress=False)  # the defaults: the official protocol
    protocol = protocol_for(get_metric("fid50k_full"), cfg, seed=0)
    det = StandIn(fid_features, temporal=False)
    value, n_real, n_fake = compute_fid(open_video_source(real_set), generator, protocol, det, batch_size=512, progress=False)
    assert (n_real, n_fake) == (ref["num_real"], ref["num_fake"]) == (20, 50_000)
    pixels = det.pixels()
    real_pixels, fake_pixels = pixels[:n_real], pixels[n_real:]
    assert real_pixels[:, :2].tolist() == ref["real_frames_in_order"]  # every real frame, in path order
    ids = np.stack([fake_pixels[:, 0] + 256 * fake_pixels[:, 2], fake_pixels[:, 1]], 1).astype(np.int64)
    assert hashlib.sha256(ids.tobytes()).hexdigest() == ref["fake_ids_sha256"]  # videos 0..3124 x t = 0..15
    assert ids[-1].tolist() == [ref["fake_videos"] - 1, ref["fake_t"][-1]]
    # the statistics of the features the official code saw, and the distance
    feats = np.concatenate(det.outputs).astype(np.float64)
    for side, f in (("real", feats[:n_real]), ("fake", feats[n_real:])):
        mu, sigma = gaussian_stats(f, "population")
        bound = _stats_bound(f)
        np.testing.assert_allclose(mu, arrays[f"fid_gen_mu_{side}"], rtol=0, atol=bound)
        np.testing.assert_allclose(sigma, arrays[f"fid_gen_sigma_{side}"], rtol=0, atol=bound)
    rtol = _fid_rtol(arrays["fid_gen_sigma_real"], arrays["fid_gen_sigma_fake"])
    assert value == pytest.approx(ref["fid"], rel=rtol)


def test_fid_of_a_fake_video_set_reads_its_first_frames_in_path_order(real_set: Path, tmp_path: Path) -> None:
    ref = OFFICIAL["fid_fake_set_32"]
    fake_set = _write_set(tmp_path / "fakes", FAKE_SET_VIDEOS, set_frame)
    cfg = MetricsConfig(device="cpu", progress=False, num_videos=2)  # 2 x 16 = 32 frames
    protocol = protocol_for(get_metric("fid50k_full"), cfg, seed=0)
    det = StandIn(fid_features, temporal=False)
    value, n_real, n_fake = compute_fid(open_video_source(real_set), open_video_source(fake_set), protocol, det, progress=False)
    assert n_fake == 32 == ref["frames_fed_to_detector"]
    # "a" whole, then "clip-2/" (sorts before "clip/"), then the first 2 frames of "clip"
    assert det.pixels()[n_real:, :2].tolist() == ref["fake_frames_in_order"]
    feats = np.concatenate(det.outputs).astype(np.float64)
    s_real, s_fake = (gaussian_stats(f, "population")[1] for f in (feats[:n_real], feats[n_real:]))
    assert value == pytest.approx(ref["fid"], rel=_fid_rtol(s_real, s_fake))


def test_running_statistics_and_frechet_distance_match_the_official_formulas() -> None:
    arrays = _arrays("fid_is_official_features.npz")
    real, fake = fixed_features()
    assert np.array_equal(real, arrays["features_real"]) and np.array_equal(fake, arrays["features_fake"])
    stats = {}
    for side, f, sizes in (("real", real, (64, 7, 50, 29)), ("fake", fake, (1, 100, 9))):
        running = RunningGaussian()
        start = 0
        for size in sizes:  # uneven batches, one of a single row
            running.update(f[start:start + size])
            start += size
        assert start == len(f) and running.count == len(f)
        mu, sigma = running.stats("population")
        # official: float64 raw moments of float32 features; values below 4: 1e-13 is hundreds of ulps
        np.testing.assert_allclose(mu, arrays[f"fixed_mu_{side}"], rtol=0, atol=1e-13)
        np.testing.assert_allclose(sigma, arrays[f"fixed_sigma_{side}"], rtol=0, atol=_stats_bound(f))
        np.testing.assert_allclose(running.stats("unbiased")[1], sigma * len(f) / (len(f) - 1), rtol=1e-12)
        stats[side] = (mu, sigma)
    value = frechet_distance(*stats["real"], *stats["fake"])
    assert value == pytest.approx(OFFICIAL["fixed_features"]["fid"], rel=_fid_rtol(stats["real"][1], stats["fake"][1]))


@pytest.mark.parametrize("num_videos", [2048, 57])
def test_video_inception_score_clips_splits_and_value_are_the_officials(num_videos: int) -> None:
    ref = OFFICIAL[f"isv_{num_videos}"]
    sizes = [len(rows) for rows in split_indices(num_videos, 10)]
    assert sizes == ref["split_sizes"]  # cut at i·N // 10
    assert sorted(split_indices(num_videos, 10)[0].tolist()) == ref["first_split_videos"]  # RandomState(42) shuffle
    cfg = MetricsConfig(device="cpu", progress=False, num_videos=num_videos, batch_size=64)
    protocol = protocol_for(get_metric("isv2048_ucf"), cfg, seed=0)
    det = StandIn(isv_probs, temporal=True)
    mean, std, n = compute_isv(generator, protocol, det, splits=10, batch_size=64, progress=False)
    assert n == num_videos
    frames = det.pixels().reshape(num_videos, 16, 3)  # video k, frames t = 0..15, in generation order
    assert (frames[:, :, 0] + 256 * frames[:, :, 2] == np.arange(num_videos)[:, None]).all()
    assert (frames[:, :, 1] == np.arange(16)).all()
    assert hashlib.sha256(np.concatenate(det.outputs).tobytes()).hexdigest() == ref["probs_sha256_float32"]
    # the official formula in float64 on the same probabilities: differences are float64 rounding only
    assert mean == pytest.approx(ref["mean_float64"], rel=1e-12) and std == pytest.approx(ref["std_float64"], rel=1e-9, abs=1e-14)
    # as the official code ran it, in float32: each split's KL sums <= 10·206 terms p·log(p/m) of size <= 0.37,
    # each off by a few float32 ulps (log, mean over <= 206 rows): |ΔKL| <= 10 · 0.37 · 16 eps32 < 1e-5
    assert mean == pytest.approx(ref["mean"], rel=1e-5) and std == pytest.approx(ref["std"], abs=1e-5)


def test_c3d_preprocessing_is_tgan2s() -> None:
    ref = _arrays("c3d_tgan2.npz")
    mean = torch.from_numpy(c3d_mean()[:, :, 8:120, 8:120])  # the crop TGANv2 takes, as the weight file's input_mean
    mean_max = float(np.abs(c3d_mean()).max())
    for i in range(len(C3D_CLIP_SHAPES)):
        clip = torch.from_numpy(c3d_clip(i)).permute(3, 0, 1, 2)[None].double()  # RGB [1, 3, T, H, W]
        h = preprocess_clips(clip, mean)[0].numpy()
        assert h.shape == (3, 16, 112, 112)
        # TGANv2 runs this in float32 (Chainer resizes float32 only): about 9 roundings (scale, 4 products and
        # 3 sums of the bilinear blend, the mean) of values below 128 + max(mean), each within eps32 / 2
        bound = 9 * (EPS32 / 2) * (128 + mean_max)
        np.testing.assert_allclose(h.reshape(-1)[ref[f"pre{i}_index"]], ref[f"pre{i}_value"], rtol=0, atol=bound)


def _c3d_with_hash_weights() -> C3D:
    model = C3D().double().eval()
    with torch.no_grad():
        for name in C3D_LAYERS:
            layer = getattr(model, name)
            w, b = c3d_layer_weights(name, tuple(layer.weight.shape), tuple(layer.bias.shape))
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    return model


@pytest.mark.slow  # a float64 C3D forward (~40 GFLOP) on shared cores
def test_c3d_network_is_tgan2s() -> None:
    ref = _arrays("c3d_tgan2.npz")
    assert ref["pool5_shape"].tolist() == [1, 512, 1, 4, 4]
    with torch.no_grad():
        logits = _c3d_with_hash_weights().network(torch.from_numpy(c3d_network_input()))[0].numpy()
    # float64 both sides, 11 layers of sums over <= 8192 terms: relative error far below 1e-9 of the largest logit
    np.testing.assert_allclose(logits, ref["logits"], rtol=0, atol=1e-9 * np.abs(ref["logits"]).max())


def test_inception_preprocessing_is_nvidias() -> None:
    ref = _arrays("inception_nvidia.npz")
    for i in range(len(INCEPTION_IMAGE_SHAPES)):
        x = torch.from_numpy(inception_image(i))[None].double()
        h = preprocess_images(x, "nvidia").numpy()
        assert h.shape == (1, 3, 299, 299)
        # float64 on both sides; NVIDIA's grid passes through normalised coordinates: a few ulps of W in position,
        # times a neighbour difference of at most 255, over 128
        bound = 16 * EPS64 * max(INCEPTION_IMAGE_SHAPES[i]) * 255 / 128
        np.testing.assert_allclose(h.reshape(-1)[ref[f"pre{i}_index"]], ref[f"pre{i}_value"], rtol=0, atol=bound)
        # NVIDIA's own float32 run of the same lines strays from this by float32 rounding only
        assert float(ref[f"pre{i}_float32_max_abs_diff"]) < 1e-4


def test_inception_pytorch_fid_preprocessing() -> None:
    """The named alternative: pytorch-fid's front end (images / 255, F.interpolate bilinear, 2x - 1)."""
    x = torch.from_numpy(inception_image(1))[None].double()
    expected = torch.nn.functional.interpolate(x / 255, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    torch.testing.assert_close(preprocess_images(x, "pytorch_fid"), expected, rtol=0, atol=1e-12)
    assert (preprocess_images(x, "nvidia") - expected).abs().max() > 1e-2  # a different input: not interchangeable


@pytest.mark.slow  # a float64 InceptionV3 forward of two images on shared cores
def test_inception_network_is_nvidias() -> None:
    ref = _arrays("inception_nvidia.npz")
    model = FIDInceptionV3("nvidia").double().eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict({k: torch.from_numpy(v) for k, v in inception_state(shapes).items()}, strict=True)
    x = [torch.from_numpy(inception_image(i))[None].double() for i in range(len(INCEPTION_IMAGE_SHAPES))]
    with torch.no_grad():
        features = np.concatenate([model(xi).numpy() for xi in x])
    # float64 both sides, ~100 layers of sums over <= 2048·9 terms: 1e-9 of the largest feature is far above rounding
    np.testing.assert_allclose(features, ref["features"], rtol=0, atol=1e-9 * np.abs(ref["features"]).max())
