"""The I3D port: TF "SAME" padding, shapes, weights conversion, and agreement with the JAX reference."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from numerics import fan_in, reorder_tolerance, weighted_layers

from stylegan_v.metrics.i3d import InceptionI3d, tf_same_pads
from stylegan_v.metrics.sample_videos import decode_rgb

FIXTURE = Path(__file__).parent / "fixtures" / "i3d_reference.json"


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [(224, 7, 2, (2, 3)), (16, 7, 2, (2, 3)), (28, 3, 2, (0, 1)), (8, 3, 2, (0, 1)), (7, 3, 1, (1, 1)), (4, 2, 2, (0, 0)), (5, 2, 2, (0, 1))],
)
def test_tf_same_pads_match_tensorflow_rule(size: int, kernel: int, stride: int, expected: tuple[int, int]) -> None:
    # TF: out = ceil(size / stride), total = max((out - 1) * stride + kernel - size, 0), extra pixel after.
    assert tf_same_pads(size, kernel, stride) == expected


def test_random_weights_shapes_and_determinism() -> None:
    torch.manual_seed(0)
    model = InceptionI3d().eval()
    x = torch.rand(2, 3, 9, 224, 224) * 2 - 1
    with torch.no_grad():
        a = model(x)
        single, again = model(x[1:]), model(x[1:])
    assert a.shape == (2, 400)
    assert torch.equal(single, again)
    # batch elements are independent: a batch of 1 and of 2 may only block (and round) differently
    tolerance = reorder_tolerance(fan_in(model), weighted_layers(model), a.abs().max())
    torch.testing.assert_close(single[0], a[1], atol=tolerance, rtol=0)


def test_rejects_wrong_resolution() -> None:
    with pytest.raises(AssertionError, match="224"):
        InceptionI3d()(torch.zeros(1, 3, 16, 112, 112))


def test_converted_state_dict_is_complete(i3d) -> None:
    # load_state_dict(strict=True) already ran; check the no-scale BN offsets and running stats are real numbers.
    state = i3d.state_dict()
    assert state["Conv3d_1a_7x7.conv.weight"].shape == (64, 3, 7, 7, 7)
    assert state["logits.conv.weight"].shape == (400, 1024, 1, 1, 1)
    assert not torch.all(state["Mixed_5c.b3b.bn_var"] == 1)
    assert not torch.all(state["Conv3d_1a_7x7.bn_bias"] == 0)


def test_matches_jax_reference_on_real_clips(i3d, sample_video_bytes) -> None:
    ref = json.loads(FIXTURE.read_text())
    # fp32 in JAX on another CPU and here, every weighted layer summing in its own order (numerics.py)
    largest = max(float(np.abs(entry["logits"]).max()) for entry in ref["clips"])
    tolerance = reorder_tolerance(fan_in(i3d), weighted_layers(i3d), largest)
    worst = 0.0
    for entry in ref["clips"]:
        start, length, size = entry["start"], entry["num_frames"], entry["size"]
        frames = decode_rgb(sample_video_bytes[entry["video"]], max_frames=start + length)[start : start + length]
        _, h, w, _ = frames.shape
        top, left = (h - size) // 2, (w - size) // 2
        clip = np.ascontiguousarray(frames[:, top : top + size, left : left + size])
        assert hashlib.sha256(clip.tobytes()).hexdigest() == entry["uint8_sha256"], "clip preparation drifted"
        x = torch.from_numpy(clip).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # [1, 3, T, H, W]
        with torch.no_grad():
            logits = i3d(x)[0].double().numpy()
        diff = float(np.abs(logits - np.asarray(entry["logits"])).max())
        worst = max(worst, diff)
        assert diff < tolerance, f"{entry['video']}: max |logit difference| {diff:.2e} vs the JAX reference"
        assert int(np.argmax(logits)) == int(np.argmax(entry["logits"]))
    print(f"largest |logit difference| vs JAX: {worst:.3e} (fp32 rounding allows {tolerance:.1e})")


def test_weights_unpickler_accepts_numpy_only() -> None:
    import collections
    import io
    import pickle

    from stylegan_v.metrics.i3d_weights import _NumpyOnlyUnpickler

    arrays = {"params": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}}
    loaded = _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arrays))).load()
    np.testing.assert_array_equal(loaded["params"]["w"], arrays["params"]["w"])
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(collections.OrderedDict(a=1)))).load()
