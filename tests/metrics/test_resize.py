"""Resize semantics: PyTorch's half-pixel bilinear (the FVD default) vs TF1 bilinear (no half-pixel centres)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan_v.metrics.resize import resize_images, tf1_bilinear_matrix


def _tf1_reference(img: np.ndarray, out: int) -> np.ndarray:
    """Direct loop transcription of TF1 resize_bilinear(align_corners=False) for one [H, W] image."""
    H, W = img.shape
    res = np.zeros((out, out))
    for i in range(out):
        y = i * H / out
        y0, fy = int(np.floor(y)), y - np.floor(y)
        y1 = min(y0 + 1, H - 1)
        for j in range(out):
            x = j * W / out
            x0, fx = int(np.floor(x)), x - np.floor(x)
            x1 = min(x0 + 1, W - 1)
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            res[i, j] = top * (1 - fy) + bottom * fy
    return res


def test_tf1_known_values_upsampling() -> None:
    # 1-D: in 2 -> out 4 samples at 0, 0.5, 1, 1.5 -> [a, (a+b)/2, b, b] (upper neighbour clamped).
    m = tf1_bilinear_matrix(2, 4).numpy()
    np.testing.assert_allclose(m @ np.array([10.0, 20.0]), [10.0, 15.0, 20.0, 20.0])


@pytest.mark.parametrize(("h", "w", "out"), [(5, 7, 11), (64, 48, 224), (300, 200, 224)])
def test_tf1_matches_loop_reference(h: int, w: int, out: int) -> None:
    rng = np.random.default_rng(h)
    img = rng.uniform(0, 255, size=(h, w))
    got = resize_images(torch.from_numpy(img)[None, None], out, "tf1")[0, 0].numpy()
    np.testing.assert_allclose(got, _tf1_reference(img, out), rtol=1e-10, atol=1e-9)


def test_torch_mode_differs_from_tf1_and_matches_interpolate() -> None:
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    a, b = resize_images(x, 224, "tf1"), resize_images(x, 224, "torch")
    assert a.shape == b.shape == (2, 3, 224, 224)
    assert (a - b).abs().max() > 1e-3  # half-pixel centres shift the image: the two protocols differ
    torch.testing.assert_close(b, torch.nn.functional.interpolate(x, size=224, mode="bilinear", align_corners=False))


def test_identity_when_size_matches_and_unknown_mode_lists_valid() -> None:
    x = torch.rand(1, 3, 224, 224)
    assert resize_images(x, 224, "tf1") is x
    with pytest.raises(ValueError, match="torch, tf1"):
        resize_images(torch.rand(1, 3, 8, 8), 4, "nearest")


def test_non_square_target_size() -> None:
    x = torch.rand(1, 3, 16, 24, dtype=torch.float64)
    torch.testing.assert_close(resize_images(x, (20, 30), "torch"),
                               torch.nn.functional.interpolate(x, size=(20, 30), mode="bilinear", align_corners=False))
    rh, rw = tf1_bilinear_matrix(16, 20), tf1_bilinear_matrix(24, 30)
    torch.testing.assert_close(resize_images(x, (20, 30), "tf1"), rh @ x @ rw.T)
