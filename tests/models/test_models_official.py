"""Parity with the official StyleGAN-V code: its snapshots load into our modules and give its outputs.

``tests/fixtures/official_tiny32.pt`` was made by the official implementation: a tiny 32² G/D with every parameter
perturbed, fixed inputs (integer, fractional and far frame times; explicit motion noise) and the official
outputs. The official code is not on the path here: the snapshots are written by ``official_format``.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import pytest
import torch
from numerics import fan_in, generator_tolerance, reorder_tolerance, weighted_layers
from official_format import BUFFERS, write_official_snapshot

from stylegan_v.models.official import OfficialSnapshotError, Record, load_official_snapshot, read_snapshot

FIXTURE = Path(__file__).parents[1] / "fixtures" / "official_tiny32.pt"
OFFICIAL_PICKLE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official" / "tiny32.pkl"


@pytest.fixture(scope="module")
def official() -> dict:
    return torch.load(FIXTURE, weights_only=True)


@pytest.fixture
def snapshot_file(official, tmp_path: Path) -> Path:
    # The fixture's G_ema is its G with weights x 0.9; fixed buffers are shared.
    G = {k: v if k.rsplit(".", 1)[-1] in BUFFERS else v / 0.9 for k, v in official["G_ema"].items()}
    return write_official_snapshot(tmp_path / "network-snapshot-000040.pkl", G, official["D"], official["G_ema"],
                                   official["config"])


def _assert_official_outputs(snapshot: dict, official: dict) -> None:
    inputs, outputs = official["inputs"], official["outputs"]
    B, K = inputs["t"].shape
    with torch.no_grad():
        video = snapshot["G_ema"](inputs["z"], inputs["t"], inputs["c"], motion_noise=inputs["motion_z"])
        frames = video.reshape(B * K, *video.shape[2:])  # the official layout: videos x frames flattened
        logits = snapshot["D"](outputs["img"].reshape(B, K, *outputs["img"].shape[1:]), inputs["t"], inputs["c"])
    # The official code ran on another CPU and orders its sums its own way: fp32 rounding of every weighted
    # layer (numerics.py), for G plus its sines' amplification of their frequencies' rounding (≈ 1e-3 here),
    # for D at the magnitude of the frames it reads (≈ 2e-4).
    G_tolerance = generator_tolerance(snapshot["G_ema"], outputs["img"], float(inputs["t"].abs().max()))
    torch.testing.assert_close(frames, outputs["img"], atol=G_tolerance, rtol=0)
    D_tolerance = reorder_tolerance(fan_in(snapshot["D"]), weighted_layers(snapshot["D"]), outputs["img"].abs().max())
    torch.testing.assert_close(logits[:, 0], outputs["D_logits"], atol=D_tolerance, rtol=0)


def test_official_outputs_through_the_loader(snapshot_file: Path, official: dict) -> None:
    """G_ema frames and D logits equal the official ones to fp32 rounding (times up to 131, fractional ones too)."""
    assert not any("torch_utils" in name for name in sys.modules)  # no official code is loaded
    snapshot = load_official_snapshot(snapshot_file)
    cfg = snapshot["config"]
    assert (cfg.resolution, cfg.num_frames, cfg.motion.distance, cfg.discriminator.num_frames_div_factor) == (32, 3, 16, 2)
    assert not snapshot["G_ema"].training and not snapshot["D"].training
    _assert_official_outputs(snapshot, official)
    assert not torch.equal(snapshot["G"].mapping.layers[0].weight, snapshot["G_ema"].mapping.layers[0].weight)


@pytest.mark.skipif(not OFFICIAL_PICKLE.exists(), reason="the official snapshot pickle is not in ../shared")
def test_the_official_pickle_itself(official: dict) -> None:
    _assert_official_outputs(load_official_snapshot(OFFICIAL_PICKLE), official)


def test_embedded_source_is_never_executed(official: dict, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    payload = f"open({str(marker)!r}, 'w').write('pwned')\n"
    path = write_official_snapshot(tmp_path / "snap.pkl", official["G_ema"], official["D"], official["G_ema"],
                                   official["config"], module_src=payload)
    snapshot = load_official_snapshot(path)
    assert not marker.exists()
    assert snapshot["G_ema"].mapping.layers[0].weight.shape == (32, 32)


class _Shell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def test_foreign_classes_become_inert_records(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G": _Shell(marker), "D": 1, "G_ema": 2}))
    with pytest.raises(OfficialSnapshotError, match="G is not a pickled module"):
        read_snapshot(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", pickle.dumps({"weights": [1, 2, 3]}),
                                     pickle.dumps([1, 2])])
def test_a_file_that_is_not_a_snapshot_gets_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file.pkl"
    path.write_bytes(content)
    with pytest.raises(OfficialSnapshotError, match="is not an official StyleGAN-V snapshot"):
        load_official_snapshot(path)


def test_unsupported_snapshot_names_what_differs(official: dict, tmp_path: Path) -> None:
    cfg = {**official["config"], "min_period_len": 32}  # buffers computed from the config no longer match
    path = write_official_snapshot(tmp_path / "snap.pkl", official["G_ema"], official["D"], official["G_ema"], cfg)
    with pytest.raises(OfficialSnapshotError, match="freqs differs from ours"):
        load_official_snapshot(path)


def test_records_keep_what_was_pickled() -> None:
    record = Record("training.layers.Foo", args=(1,))
    record.__setstate__({"a": 1})
    assert (record.name, record.args, record.state) == ("Foo", (1,), {"a": 1})
