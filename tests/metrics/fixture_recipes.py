"""Inputs of the official-code fixtures (``tests/metrics/fixtures/README.md``), rebuilt by the tests.

The fixtures were made by running the official metric code on exactly these inputs; a test rebuilds them here
and feeds them to our code. Everything is exact integer arithmetic or NumPy's frozen legacy ``RandomState``
stream, so every machine builds the same bytes. NumPy only (one fixture was made in an environment without
torch); the stand-in detectors take and return NumPy arrays.
"""

from __future__ import annotations

import numpy as np

# --- FID: a real dataset and a fake video set (frame folders of PNGs) ------------------------------------
REAL_VIDEOS = {"v0": 4, "v1": 6, "v2": 3, "v3": 5, "v4": 2}  # name -> frames, 128x128 (the official needs a 128 resolution)
FAKE_SET_VIDEOS = {"a": 10, "clip": 20, "clip-2": 20}  # 16x16; paths sort "clip-2/..." before "clip/..."


def real_frame(v: int, t: int, size: int = 128) -> np.ndarray:
    """Frame t of real video v: brightness and texture vary with (v, t); pixel (0, 0) = (v, t, ·) identifies it."""
    y, x = np.mgrid[0:size, 0:size]
    img = np.stack([30 + (v * 37 + t * t * 11 + c * 29) % 120 + ((y // 8) * (x // 8) * (c + 1) + v * t) % 40 * (1 + (v + t + c) % 2)
                    for c in range(3)], -1)
    img = img.astype(np.uint8)
    img[0, 0] = (v, t, (v * 5 + t * t * 3) % 256)
    return img


def fake_video(k: int, ts: np.ndarray, size: int = 8) -> np.ndarray:
    """Frames ts [T] of generated video k, uint8 [T, size, size, 3]; pixel (0, 0) = (k mod 256, t, k div 256)."""
    t, y, x, c = np.ix_(np.asarray(ts, dtype=np.int64), np.arange(size), np.arange(size), np.arange(3))
    img = (((k * 7 + t * 29 + y * 8 + x) * (c + 1) * 3 + (k * t) % 11) % 256).astype(np.uint8)
    img[:, 0, 0] = np.stack([np.full(len(ts), k % 256), np.asarray(ts) % 256, np.full(len(ts), k // 256)], -1)
    return img


def fake_frame(k: int, t: int, size: int = 8) -> np.ndarray:
    """Frame t of generated video k (see fake_video)."""
    return fake_video(k, np.array([t]), size)[0]


def set_frame(video: int, t: int, size: int = 16) -> np.ndarray:
    """Frame t of video ``video`` (index in FAKE_SET_VIDEOS) of the fake video set; pixel (0, 0) = (video, t, ·)."""
    img = fake_frame(video * 100 + t, t, size)
    img[0, 0] = (video, t, (video * 7 + t * t) % 256)
    return img


def fid_features(images: np.ndarray) -> np.ndarray:
    """Stand-in FID detector: images [N, 3, H, W] (integer values) -> float32 [N, 9]: channel means, channel means
    of squares / 255, pixel (0, 0). Sums of integers in float64 are exact, so every machine gets these bits."""
    x = np.asarray(images, dtype=np.float64)
    return np.concatenate([x.mean((2, 3)), (x * x).mean((2, 3)) / 255, x[:, :, 0, 0]], 1).astype(np.float32)


def isv_probs(clips: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Stand-in C3D: clips [B, 3, T, H, W] (integer values) -> float32 'probabilities' [B, K] from integer hashes of
    the channel sums (one division per entry: exact everywhere)."""
    s = np.asarray(clips, dtype=np.float64).sum((2, 3, 4)).astype(np.int64)
    key = s[:, 0] * 3 + s[:, 1] * 5 + s[:, 2] * 7
    j = np.arange(1, num_classes + 1, dtype=np.int64)
    w = ((key[:, None] * j[None] * 2654435761) % 1000003) % 97 + 1
    w = w.astype(np.float64)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


# --- fixed features for the Fréchet formula -----------------------------------------------------------
def fixed_features() -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(7)
    D = 24
    a1, a2 = rs.standard_normal((D, D)) / np.sqrt(D), rs.standard_normal((D, D)) / np.sqrt(D)
    real = np.abs(rs.standard_normal((150, D)) @ a1 + 0.5).astype(np.float32)  # non-negative like pool features
    fake = np.abs(rs.standard_normal((110, D)) @ a2 + 0.6).astype(np.float32)
    return real, fake


# --- hash-generated weights and inputs (the real detector weights are not reachable) ----------------------
def hash_uniform(n: int, salt: int) -> np.ndarray:
    """n numbers in [0, 1) from a splitmix64-style hash of (index, salt): exact integer arithmetic."""
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def he_uniform(shape: tuple[int, ...], salt: int) -> np.ndarray:
    fan_in = int(np.prod(shape[1:]))
    return ((hash_uniform(int(np.prod(shape)), salt) * 2 - 1) * np.sqrt(6.0 / fan_in)).reshape(shape)


def small(shape: tuple[int, ...], salt: int, scale: float = 0.1) -> np.ndarray:
    return ((hash_uniform(int(np.prod(shape)), salt) * 2 - 1) * scale).reshape(shape)


# C3D: TGANv2's layer names (ours are the same)
C3D_LAYERS = ("conv1a", "conv2a", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b", "fc6", "fc7", "fc8")
C3D_CLIP_SHAPES = ((16, 40, 48), (16, 150, 170))  # (T, H, W): upsampled and downsampled to 112²


def c3d_layer_weights(name: str, shape_w: tuple[int, ...], shape_b: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    salt = 2 * (C3D_LAYERS.index(name) + 1)
    return he_uniform(shape_w, salt), small(shape_b, salt + 1)


def c3d_clip(i: int) -> np.ndarray:
    """uint8 RGB clip [T, H, W, 3]."""
    T, H, W = C3D_CLIP_SHAPES[i]
    return np.random.RandomState(100 + i).randint(0, 256, size=(T, H, W, 3)).astype(np.uint8)


def c3d_mean() -> np.ndarray:
    """Stand-in for TGANv2's mean2.npz 'mean' [3, 16, 128, 128] (BGR)."""
    return np.random.RandomState(3).uniform(60.0, 140.0, size=(3, 16, 128, 128))


def c3d_network_input() -> np.ndarray:
    """An input like a preprocessed clip, [1, 3, 16, 112, 112] in [-100, 100)."""
    return ((hash_uniform(3 * 16 * 112 * 112, 999) * 2 - 1) * 100).reshape(1, 3, 16, 112, 112)


# Inception: images for the preprocessing and the whole network
INCEPTION_IMAGE_SHAPES = ((128, 128), (300, 400))  # (H, W): upsampled and downsampled to 299²


def inception_image(i: int) -> np.ndarray:
    """uint8 image [3, H, W]."""
    H, W = INCEPTION_IMAGE_SHAPES[i]
    return np.random.RandomState(200 + i).randint(0, 256, size=(3, H, W)).astype(np.uint8)


def inception_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Weights for ``FIDInceptionV3`` keyed by its (pytorch-fid) names, given their shapes: convolutions He-uniform,
    batch norms with unit scale (the TF graph has none) and small shifts/means, variances in [0.5, 1.5)."""
    out: dict[str, np.ndarray] = {}
    for salt, (name, shape) in enumerate(sorted(shapes.items()), start=1):
        if name.endswith("conv.weight") or name == "fc.weight":
            out[name] = he_uniform(shape, salt)
        elif name.endswith("bn.weight"):
            out[name] = np.ones(shape)
        elif name.endswith("bn.running_var"):
            out[name] = 1.0 + small(shape, salt, 0.5)
        elif name.endswith("num_batches_tracked"):
            out[name] = np.zeros(shape, dtype=np.int64)
        else:  # bn.bias, bn.running_mean, fc.bias
            out[name] = small(shape, salt)
    return out
