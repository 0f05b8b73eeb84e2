"""FID InceptionV3 and C3D on random weights (shapes, determinism, loading), IS math on known inputs,
and the "weights unavailable" path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan_v.metrics.c3d import C3D, load_c3d
from stylegan_v.metrics.fid import compute_fid, frame_stats, iter_real_frames
from stylegan_v.metrics.fvd import FVDProtocol
from stylegan_v.metrics.inception import FIDInceptionV3, WeightsUnavailable, load_fid_inception
from stylegan_v.metrics.inception_score import inception_score
from stylegan_v.metrics.isv import compute_isv
from stylegan_v.metrics.video_source import ArrayVideos


def test_inception_score_known_values() -> None:
    K = 5
    confident_uniform = np.eye(K)[np.arange(100) % K]  # sharp predictions, every class equally often -> IS = K
    mean, std = inception_score(confident_uniform, splits=1)
    assert mean == pytest.approx(K, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    # shuffled splits of 10 rarely hold every class exactly twice: each split scores exp(entropy of its labels) <= K
    mean, std = inception_score(confident_uniform, splits=10)
    assert 1 < mean < K and std > 0
    same = np.tile(np.array([[0.7, 0.1, 0.1, 0.05, 0.05]]), (50, 1))  # no diversity -> IS = 1
    assert inception_score(same, splits=5)[0] == pytest.approx(1.0, abs=1e-9)
    # Two classes, p(y|x) = (0.9, 0.1) / (0.1, 0.9) half each: IS = exp(KL((.9,.1) || (.5,.5))).
    p = np.array([[0.9, 0.1], [0.1, 0.9]] * 10)
    kl = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    assert inception_score(p, splits=1)[0] == pytest.approx(np.exp(kl), rel=1e-9)


@pytest.fixture(scope="module")
def inception() -> FIDInceptionV3:
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


def test_fid_inception_random_weights_shapes_determinism(inception: FIDInceptionV3) -> None:
    x = torch.rand(2, 3, 64, 80) * 255
    with torch.no_grad():
        a, one, again = inception(x), inception(x[:1]), inception(x[:1])
    assert a.shape == (2, 2048) and torch.equal(one, again)
    torch.testing.assert_close(one[0], a[0], rtol=1e-4, atol=1e-5)
    # torchvision Inception3: 27,161,264 parameters; minus the aux head (3,326,696), plus 8 classes (8 x 2049).
    assert sum(p.numel() for p in inception.parameters()) == 27_161_264 - 3_326_696 + 8 * 2049


def test_fid_inception_loads_from_cache_dir(inception: FIDInceptionV3, tmp_path: Path) -> None:
    weights = tmp_path / "weights" / "pt_inception-2015-12-05-6726825d.pth"
    weights.parent.mkdir()
    torch.save(inception.state_dict(), weights)
    loaded = load_fid_inception(None, tmp_path)  # strict load: every name of the reference layout is present
    x = torch.rand(1, 3, 40, 40) * 255
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), inception(x))


@pytest.mark.slow  # a 2048-d matrix square root on 2 shared cores
def test_compute_fid_pipeline(inception: FIDInceptionV3) -> None:
    rng = np.random.default_rng(0)
    real = ArrayVideos([rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8) for _ in range(3)])
    fake = ArrayVideos([rng.integers(0, 255, (9, 32, 32, 3), dtype=np.uint8) for _ in range(3)])
    proto = FVDProtocol(num_videos=3, num_frames=9, fake_jpeg_quality=None, fake_selection="first")
    assert len(list(iter_real_frames(real, max_frames=5, seed=0))) == 5
    value, n_real, n_fake = compute_fid(real, fake, proto, inception, batch_size=8, progress=False)
    assert n_real == 12 and n_fake == 27 and np.isfinite(value) and value > 0


def test_fid_statistics_stream_in_memory_flat_in_the_number_of_frames() -> None:
    """FID sees every real frame (often millions): its statistics must not keep the features. Peak traced
    memory for 8x the frames stays within a fraction of what keeping 512-d float64 features would take."""
    import tracemalloc

    class Wide(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.linspace(-1, 1, 3 * 512).reshape(3, 512), requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(np.tanh(x.mean((2, 3)).numpy().astype(np.float64) / 64 @ self.w.double().numpy() + np.arange(512) / 512))

    def frames(n: int):
        rng = np.random.default_rng(0)
        return (rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for _ in range(n))

    def peak(n: int) -> int:
        tracemalloc.start()
        stats = frame_stats(Wide(), frames(n), batch_size=250, covariance="population", desc="frames", progress=False)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert stats.count == n and stats.sigma.shape == (512, 512)
        return top

    small, large = peak(1000), peak(8000)
    kept = (8000 - 1000) * 512 * 8  # what keeping the extra features would add: 28.7 MB
    assert large - small < kept / 8, (small, large)


def test_c3d_random_weights_shapes_determinism_and_isv(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = C3D().eval()
    x = torch.rand(1, 3, 16, 64, 64) * 255
    with torch.no_grad():
        p, q = model(x), model(x)
    assert p.shape == (1, 101) and torch.equal(p, q)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(1, dtype=p.dtype))
    torch.save(model.state_dict(), tmp_path / "c3d.pth")
    loaded = load_c3d(tmp_path / "c3d.pth", tmp_path)
    rng = np.random.default_rng(0)
    fake = ArrayVideos([rng.integers(0, 255, (16, 48, 48, 3), dtype=np.uint8) for _ in range(2)])
    mean, std, n = compute_isv(fake, FVDProtocol(num_videos=2, num_frames=16), loaded, splits=2, progress=False)
    assert n == 2 and mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-9)  # one video per split: KL = 0


def test_missing_weights_message_names_file_and_place(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("STYLEGAN_V_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(WeightsUnavailable) as err:
        load_fid_inception(None, tmp_path)
    msg = str(err.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in msg and str(tmp_path / "weights") in msg
    assert "STYLEGAN_V_INCEPTION_WEIGHTS" in msg
    with pytest.raises(WeightsUnavailable, match="c3d_ucf101.pth"):
        load_c3d(None, tmp_path)
