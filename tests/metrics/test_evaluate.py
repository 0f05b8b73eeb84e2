"""Metrics configs compose and validate; ``stylegan_v.evaluate.run`` end to end on real footage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from stylegan_v.configs import register_configs, validate
from stylegan_v.metrics.registry import METRICS, get_metric
from stylegan_v.metrics.sample_videos import decode_rgb

REPO = Path(__file__).resolve().parents[2]


def _compose(overrides: list[str], option: str = "cpu"):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[f"metrics={option}", *overrides])


def test_cpu_and_paper_options_compose_and_validate() -> None:
    cpu = validate(_compose([]).metrics)
    assert cpu.names == ["fvd256_16f"] and cpu.reduced and cpu.num_videos == 48
    paper = validate(_compose([], option="paper").metrics)
    assert paper.names == ["fvd2048_16f", "fvd2048_128f", "fvd2048_128f_subsample8f", "fid50k_full", "isv2048_ucf"]
    assert paper.num_videos is None and paper.real_selection == "random_offset"
    # StyleGAN-V's official protocol is the default of both options.
    for typed in (cpu, paper):
        assert (typed.video_selection, typed.resize_mode, typed.fake_jpeg_quality, typed.covariance) == ("first", "torch", None, "population")
        assert (typed.still_frame, typed.pre_resize_mode, typed.repeat_real, typed.fid_preprocessing) == ("any", "roundtrip", "fixed", "nvidia")
    old = validate(_compose(["metrics.video_selection=random", "metrics.still_frame=clip_start", "metrics.fake_jpeg_quality=95",
                             "metrics.pre_resize_mode=direct", "metrics.resize_mode=tf1", "metrics.covariance=unbiased",
                             "metrics.repeat_real=redraw"], option="paper").metrics)
    assert (old.video_selection, old.resize_mode, old.fake_jpeg_quality, old.repeat_real) == ("random", "tf1", 95, "redraw")
    spec = get_metric("fvd2048_128f_subsample8f")
    assert (spec.num_frames, spec.subsample) == (16, 8)  # 16 frames fed to I3D, spread over a 128-frame window


@pytest.mark.parametrize(
    ("override", "key"),
    [("metrics.real_selection=middle", "metrics.real_selection"), ("metrics.fake_jpeg_quality=101", "metrics.fake_jpeg_quality"),
     ("metrics.names=[fvd9_16f]", "metrics.names"), ("metrics.resize_mode=area", "metrics.resize_mode"),
     ("metrics.video_selection=sorted", "metrics.video_selection"), ("metrics.still_frame=last", "metrics.still_frame"),
     ("metrics.pre_resize_mode=twice", "metrics.pre_resize_mode"), ("metrics.covariance=biased", "metrics.covariance"),
     ("metrics.repeat_real=never", "metrics.repeat_real"), ("metrics.fid_preprocessing=tf1", "metrics.fid_preprocessing")],
)
def test_bad_values_fail_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        validate(_compose([override]).metrics)


def test_unknown_metric_lists_valid_names() -> None:
    with pytest.raises(KeyError, match="fvd2048_16f, fvd2048_128f"):
        get_metric("fvd")
    assert set(METRICS) >= {"fvd2048_16f", "fvd2048_128f", "fvd2048_128f_subsample8f", "fvd256_16f", "fid50k_full", "fid2048_16f", "isv2048_ucf"}


def test_evaluate_run_writes_results_and_reports_missing_weights(tmp_path: Path, sample_video_bytes, i3d, cache_dir: Path, monkeypatch) -> None:
    from stylegan_v.evaluate import run

    real = tmp_path / "real"  # a folder of encoded videos
    fake = tmp_path / "fake"  # frame folders (JPEG q95), 20 frames from t = 0
    real.mkdir()
    for name in ("carphone_pristine.mp4", "carphone_distorted.mp4", "bikes.mp4"):  # small ones: decoding is per read
        data = sample_video_bytes[name]
        (real / name).write_bytes(data)
        (fake / Path(name).stem).mkdir(parents=True)
        for t, frame in enumerate(decode_rgb(data, max_frames=20)):
            Image.fromarray(frame).resize((96, 96)).save(fake / Path(name).stem / f"{t:06d}.jpg", quality=95)
    monkeypatch.delenv("STYLEGAN_V_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("STYLEGAN_V_C3D_WEIGHTS", raising=False)
    out = tmp_path / "out"
    weights_dir = tmp_path / "cache"  # empty cache for FID/IS weights; I3D comes from the shared cache
    (weights_dir / "weights").mkdir(parents=True)
    (weights_dir / "weights" / "i3d_kinetics400_af5c50f0df57.pt").symlink_to((cache_dir / "weights" / "i3d_kinetics400_af5c50f0df57.pt").resolve())
    cfg = _compose([f"metrics.real={real}", f"metrics.fake={fake}", f"metrics.output_dir={out}", "metrics.num_videos=2",
                    "metrics.names=[fvd256_16f,fid2048_16f,isv2048_ucf]", "metrics.progress=false", f"paths.cache_dir={weights_dir}"])
    results = run(cfg)
    fvd = results["fvd256_16f"]
    assert fvd["status"] == "ok" and fvd["value"] > 0 and fvd["num_real"] == fvd["num_fake"] == 2 and fvd["reduced"]
    for name, file in (("fid2048_16f", "pt_inception-2015-12-05-6726825d.pth"), ("isv2048_ucf", "c3d_ucf101.pth")):
        assert results[name]["status"] == "unavailable" and results[name]["value"] is None
        assert file in results[name]["message"] and str(weights_dir / "weights") in results[name]["message"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["results"]["fvd256_16f"]["value"] == pytest.approx(fvd["value"])
    run(cfg)  # a second evaluation appends; the real statistics now come from the cache
    lines = (out / "metric-fvd256_16f.jsonl").read_text().splitlines()
    assert len(lines) == 2
    second = json.loads(lines[1])  # one flat record per metric and evaluation (stylegan_v.metrics.records)
    assert second["metric"] == "fvd256_16f" and second["source"] == "evaluate"
    assert second["value"] == pytest.approx(fvd["value"], rel=1e-6)


GENERATOR_MODULE = '''
import numpy as np


def load(checkpoint, device):
    """A stand-in generator loader: smooth random videos, from t = 0 (the training room plugs in the real one)."""
    def generate(num_videos, num_frames, seed, step):
        rng = np.random.default_rng(seed)
        for _ in range(num_videos):
            base = rng.integers(0, 255, size=(1, 8, 8, 3)).repeat(8, 1).repeat(8, 2)
            drift = np.arange(num_frames)[:, None, None, None] * 3 * step
            yield ((base + drift) % 256).astype(np.uint8)
    return generate
'''


def _metrics_override() -> str:
    """`metrics=cpu` once the root defaults list the group, `+metrics=cpu` before that."""
    import yaml

    defaults = yaml.safe_load((REPO / "conf" / "config.yaml").read_text())["defaults"]
    listed = any(isinstance(d, dict) and "metrics" in d for d in defaults)
    return "metrics=cpu" if listed else "+metrics=cpu"


def test_cli_with_generator_loader_writes_next_to_checkpoint(tmp_path: Path, sample_video_bytes, i3d, cache_dir: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "fake_gen_mod.py").write_text(GENERATOR_MODULE)
    real = tmp_path / "real"
    real.mkdir()
    for name in ("carphone_pristine.mp4", "carphone_distorted.mp4"):
        (real / name).write_bytes(sample_video_bytes[name])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "snapshot.pt").write_bytes(b"")
    weights_dir = tmp_path / "cache"
    (weights_dir / "weights").mkdir(parents=True)
    (weights_dir / "weights" / "i3d_kinetics400_af5c50f0df57.pt").symlink_to((cache_dir / "weights" / "i3d_kinetics400_af5c50f0df57.pt").resolve())
    env = {k: v for k, v in os.environ.items() if k not in ("STYLEGAN_V_C3D_WEIGHTS", "STYLEGAN_V_INCEPTION_WEIGHTS")}
    env["PYTHONPATH"] = str(tmp_path)
    cmd = [sys.executable, "-m", "stylegan_v.evaluate", _metrics_override(), f"metrics.real={real}",
           f"metrics.checkpoint={run_dir / 'snapshot.pt'}", "metrics.generator_loader=fake_gen_mod:load",
           "metrics.num_videos=2", "metrics.names=[fvd256_16f,isv2048_ucf]", "metrics.progress=false",
           f"paths.cache_dir={weights_dir}", f"hydra.run.dir={tmp_path / 'hydra'}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["checkpoint"] == str(run_dir / "snapshot.pt")
    assert saved["results"]["fvd256_16f"]["status"] == "ok" and saved["results"]["fvd256_16f"]["value"] > 0
    assert saved["results"]["isv2048_ucf"]["status"] == "unavailable"
    assert "c3d_ucf101.pth" in saved["results"]["isv2048_ucf"]["message"]
    assert (run_dir / "metric-fvd256_16f.jsonl").exists() and (run_dir / "metric-isv2048_ucf.jsonl").exists()


@pytest.mark.slow  # MLflow's sqlite store runs its migrations on creation
def test_results_reach_the_checkpoints_mlflow_run(tmp_path: Path) -> None:
    import mlflow

    from stylegan_v.evaluate import log_to_mlflow
    from stylegan_v.tracking.records import RUN_FILE

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("eval"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / RUN_FILE).write_text(json.dumps({"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "tracking_uri": uri}))
    results = {"fvd256_16f": {"status": "ok", "value": 123.5}, "isv2048_ucf": {"status": "unavailable", "value": None}}
    assert log_to_mlflow(str(run_dir / "snapshot.pt"), results)
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics == {"metrics/fvd256_16f": 123.5}
    # Evaluating the same checkpoint again (another process, or twice by hand) adds no second point.
    assert log_to_mlflow(str(run_dir / "snapshot.pt"), {"fvd256_16f": {"status": "ok", "value": 130.0}})
    assert len(client.get_metric_history(run.info.run_id, "metrics/fvd256_16f")) == 1
