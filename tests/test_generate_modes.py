"""Latent analysis in ``generate``: manipulate_appearance / manipulate_motion rows differ only in the swept
dimension, motion_switch rows are the swapped (appearance, motion, class) sets, and every row of the output is G
run on that row's codes alone.

Only what the models guarantee is asserted: eval-mode G is deterministic and renders each video from its own
codes. Nothing is said about which frames a code leaves unchanged (G3AN's motion enters every frame)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from numerics import generator_tolerance
from PIL import Image

import stylegan_v.generate as generate_module
from stylegan_v.checks import ConfigError
from stylegan_v.generate import GenerateConfig, grid_indices
from stylegan_v.latents import CodeSets, manipulate, sweep, switch_motion
from stylegan_v.models.g3an import G3ANGenerator
from stylegan_v.models.generator import to_rgb_uint8
from stylegan_v.models.registry import build_models
from stylegan_v.training import checkpoint

TINY_STYLEGAN_V = {
    "name": "stylegan_v",
    "mapping": {"z_dim": 8, "w_dim": 8},
    "motion": {"noise_dim": 4, "code_dim": 4, "embed_dim": 4, "kernel_size": 3, "num_layers": 1,
               "omega_min": 4.0, "omega_max": 32.0},  # motion codes every 4 frames: a 12-frame video reads several
    "synthesis": {"channel_base": 64, "channel_max": 8, "num_fp16_res": 0},
    "discriminator": {"channel_base": 64, "channel_max": 8, "num_fp16_res": 0},
}
TINY_G3AN = {"name": "g3an", "za_dim": 6, "zm_dim": 5, "num_classes": 3, "base_channels": 32, "d_channels": 8}
MODELS = {  # name: (model config, resolution, frames D sees)
    "g3an": (TINY_G3AN, 64, 16),
    "stylegan_v": ({**TINY_STYLEGAN_V, "img_channels": 1}, 16, 3),  # grayscale: frames shown as gray RGB
    "lstm": ({**TINY_STYLEGAN_V, "motion": {**TINY_STYLEGAN_V["motion"], "kind": "lstm"}}, 16, 3),
}


def _write_checkpoint(path: Path, model: dict[str, Any], resolution: int, num_frames: int = 3) -> Path:
    torch.manual_seed(0)
    G, _ = build_models(model, resolution, num_frames)
    for module in G.modules():  # G3AN's N(0, 0.02) start renders every code alike: widen it so rows differ
        if isinstance(module, (torch.nn.ConvTranspose3d, torch.nn.Conv3d)):
            w = module.weight
            fan_in = (w.shape[0] if isinstance(module, torch.nn.ConvTranspose3d) else w.shape[1]) * w[0, 0].numel()
            torch.nn.init.normal_(w, 0.0, 2.0 * fan_in ** -0.5)
    config = {"model": model, "dataset": {"resolution": resolution, "fps": 25,
                                          "sampling": {"num_frames": num_frames, "max_num_frames": 16}}}
    return checkpoint.write(path, {"G_ema": G.state_dict(), "config": config, "progress": {"nimg": 0}})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {name: _write_checkpoint(root / f"{name}.pt", *spec) for name, spec in MODELS.items()}


def _run_recorded(monkeypatch: pytest.MonkeyPatch, **cfg: Any) -> tuple[dict[str, Any], torch.nn.Module, list]:
    """generate's run with a hook on G: returns (result, G, [(args, kwargs, output) per forward])."""
    calls: list[tuple[tuple, dict, torch.Tensor]] = []
    loaded: dict[str, torch.nn.Module] = {}
    real_load = checkpoint.load_generator

    def load(path: Any, device: Any = "cpu") -> tuple[torch.nn.Module, dict]:
        G, train_cfg = real_load(path, device)
        G.register_forward_hook(lambda m, args, kwargs, out: calls.append((args, kwargs, out)), with_kwargs=True)
        loaded["G"] = G
        return G, train_cfg

    monkeypatch.setattr(checkpoint, "load_generator", load)  # generate imports it when it runs
    result = generate_module.run(GenerateConfig(device="cpu", **cfg))
    return result, loaded["G"], calls


def _code_sets(G: torch.nn.Module, call: tuple[tuple, dict, torch.Tensor]) -> CodeSets:
    """The (appearance, motion, class) rows one forward received, read back from G's own inputs."""
    (z, _t, c), kwargs, _ = call
    if isinstance(G, G3ANGenerator):
        return CodeSets(z[:, : G.cfg.za_dim], z[:, G.cfg.za_dim:], c)
    motion = kwargs["motion_noise"] if "motion_noise" in kwargs else kwargs["motion_seed"]
    return CodeSets(z, motion, c if G.c_dim > 0 else None)


def _assert_rows_are_g_on_their_codes(G: torch.nn.Module, calls: list, result: dict[str, Any]) -> None:
    """Each row of the output (all chunks) equals G run on that row's codes alone; the PNG holds those frames."""
    video = torch.cat([out for _, _, out in calls], dim=1)  # [N, T, C, H, W]
    times = torch.cat([args[1] for args, _, _ in calls], dim=1)
    (z, _, c), kwargs, _ = calls[0]
    # a row alone and within the batch may block (and round) differently: fp32 rounding of G (numerics.py)
    tolerance = generator_tolerance(G, video, float(times.abs().max()))
    with torch.no_grad():
        for i in range(z.shape[0]):
            alone = G(z[i: i + 1], times[i: i + 1], None if c is None else c[i: i + 1],
                      **{k: v[i: i + 1] if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})
            torch.testing.assert_close(alone[0], video[i], atol=tolerance, rtol=0)
    frames = to_rgb_uint8(video[:, grid_indices(video.shape[1])])  # [N, F, 3, H, W]
    N, F, _, H, W = frames.shape
    png = np.asarray(Image.open(result["grid"]))
    assert png.shape == (N * H, F * W, 3) and result["rows"] == N
    for i in range(N):
        expected = frames[i].permute(2, 0, 3, 1).reshape(H, F * W, 3).numpy()  # frames left to right
        np.testing.assert_array_equal(png[i * H: (i + 1) * H], expected)
    with av.open(result["out"]) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (W, N * H)  # one row per code set
        assert stream.frames in (0, video.shape[1])  # 0: not recorded by the muxer


def test_sweep_and_switch_build_the_promised_rows() -> None:
    noise = torch.randn(5, 4)  # motion noise: 5 positions, 4 dimensions
    before = noise.clone()
    rows = sweep(noise, 2, [-1.0, 0.5])
    assert rows.shape == (2, 5, 4)
    assert torch.equal(rows[:, :, 2], torch.tensor([[-1.0] * 5, [0.5] * 5]))  # every position moves
    assert torch.equal(rows[:, :, [0, 1, 3]], noise[:, [0, 1, 3]].expand(2, -1, -1))
    assert torch.equal(noise, before)  # the base is not written to
    pair = CodeSets(torch.randn(2, 3), torch.randn(2, 4), torch.eye(2))
    switched = switch_motion(pair)
    for row, (a, m) in enumerate([(0, 0), (1, 1), (0, 1), (1, 0)]):
        assert torch.equal(switched.appearance[row], pair.appearance[a])
        assert torch.equal(switched.motion[row], pair.motion[m]) and torch.equal(switched.classes[row], pair.classes[m])
    with pytest.raises(ValueError, match="unknown code part"):
        manipulate(pair.select([0]), "colour", 0, [1.0])


@pytest.mark.parametrize("model", ["g3an", "stylegan_v", "lstm"])
@pytest.mark.parametrize("part", ["appearance", "motion"])
def test_manipulate_rows_differ_only_in_the_chosen_dimension(
        model: str, part: str, checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = [-2.0, 0.0, 1.5]
    result, G, calls = _run_recorded(monkeypatch, checkpoint=str(checkpoints[model]), out=str(tmp_path / "m.mp4"),
                                     mode=f"manipulate_{part}", dim=1, values=values, num_frames=12, chunk=5,
                                     num_videos=5, seed=3)  # num_videos is not used by the analysis modes
    assert len(calls) == 3 and result["grid"] == str(tmp_path / "m.png")
    sets = _code_sets(G, calls[0])
    for call in calls[1:]:  # every chunk renders the same code sets
        later = _code_sets(G, call)
        assert torch.equal(later.appearance, sets.appearance) and torch.equal(later.motion, sets.motion)
    assert len(sets) == len(values)
    swept, fixed = (sets.appearance, sets.motion) if part == "appearance" else (sets.motion, sets.appearance)
    assert swept.dtype.is_floating_point
    expected = torch.tensor(values).reshape(-1, *[1] * (swept.ndim - 2)).expand(swept.shape[:-1])
    assert torch.equal(swept[..., 1], expected)  # the chosen dimension, by the chosen values (every position)
    others = torch.cat([swept[..., :1], swept[..., 2:]], dim=-1)
    assert torch.equal(others, others[:1].expand_as(others))  # ... and nothing else of that code
    assert torch.equal(fixed, fixed[:1].expand_as(fixed))
    if sets.classes is not None:
        assert torch.equal(sets.classes, sets.classes[:1].expand_as(sets.classes))
    _assert_rows_are_g_on_their_codes(G, calls, result)


@pytest.mark.parametrize("model", ["g3an", "stylegan_v"])
def test_motion_switch_swaps_motion_and_class(
        model: str, checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, G, calls = _run_recorded(monkeypatch, checkpoint=str(checkpoints[model]), out=str(tmp_path / "s.mp4"),
                                     mode="motion_switch", num_frames=6, classes=[2, 0] if model == "g3an" else None)
    sets = _code_sets(G, calls[0])
    assert len(sets) == 4
    a, m = sets.appearance, sets.motion
    assert not torch.equal(a[0], a[1]) and not torch.equal(m[0], m[1])  # two independently sampled sets
    for row, (appearance, motion) in ((2, (0, 1)), (3, (1, 0))):  # (a0, m1, c1) and (a1, m0, c0)
        assert torch.equal(a[row], a[appearance]) and torch.equal(m[row], m[motion])
    if model == "g3an":  # conditional: the class travels with the motion
        assert sets.classes.argmax(dim=1).tolist() == [2, 0, 0, 2]
    _assert_rows_are_g_on_their_codes(G, calls, result)


def test_analysis_refuses_what_it_cannot_do(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    for key, bad in (("dim", {"dim": -1}), ("values", {"values": []}), ("values", {"values": [1.0, math.nan]})):
        with pytest.raises(ConfigError, match=f"^{key} "):
            GenerateConfig(checkpoint="x.pt", mode="manipulate_motion", **bad)
    with pytest.raises(ConfigError, match=r"^dim must be below 5, the size of this model's motion code, got 5$"):
        generate_module.run(GenerateConfig(checkpoint=str(checkpoints["g3an"]), out=str(tmp_path / "x.mp4"),
                                           mode="manipulate_motion", dim=5, device="cpu"))
    hierarchical = {**TINY_STYLEGAN_V, "motion": {**TINY_STYLEGAN_V["motion"], "kind": "hierarchical",
                                                  "hierarchical_distances": [4, 8]}}
    path = _write_checkpoint(tmp_path / "hier.pt", hierarchical, 16)
    with pytest.raises(ValueError, match="one layer of motion noise; motion.kind=hierarchical"):
        generate_module.run(GenerateConfig(checkpoint=str(path), out=str(tmp_path / "x.mp4"),
                                           mode="manipulate_motion", device="cpu"))
    assert not (tmp_path / "x.mp4").exists()


def test_same_content_and_same_motion_split_g3an_codes() -> None:
    """G3AN has no motion seed: its z is [z_a, z_m], so the classic modes share or vary those parts."""
    from stylegan_v.generate import _codes
    from stylegan_v.tool_config import GenerateConfig

    z, _ = _codes(GenerateConfig(checkpoint="x", mode="same_content", num_videos=3), 10, appearance_dim=6)
    assert torch.equal(z[:, :6], z[:1, :6].expand(3, -1)) and not torch.equal(z[1, 6:], z[0, 6:])
    z, _ = _codes(GenerateConfig(checkpoint="x", mode="same_motion", num_videos=3), 10, appearance_dim=6)
    assert torch.equal(z[:, 6:], z[:1, 6:].expand(3, -1)) and not torch.equal(z[1, :6], z[0, :6])
