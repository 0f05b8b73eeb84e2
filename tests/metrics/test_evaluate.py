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
        try:  # the lead lists `metrics: cpu` in the root defaults; before that, append the group
            return compose(config_name="config", overrides=[f"metrics={option}", *overrides])
        except Exception:
            return compose(config_name="config", overrides=[f"+metrics={option}", *overrides])


def test_cpu_and_paper_options_compose_and_validate() -> None:
    cpu = validate(_compose([]).metrics)
    assert cpu.names == ["fvd256_16f"] and cpu.reduced and cpu.num_videos == 16
    paper = validate(_compose([], option="paper").metrics)
    assert paper.names == ["fvd2048_16f", "fvd2048_128f", "fvd2048_128f_subsample8f", "fid2048_16f", "isv2048_ucf"]
    assert paper.num_videos is None and paper.fake_jpeg_quality == 95 and paper.real_selection == "random_offset"
    spec = get_metric("fvd2048_128f_subsample8f")
    assert (spec.num_frames, spec.subsample) == (16, 8)  # 16 frames fed to I3D, spread over a 128-frame window


@pytest.mark.parametrize(
    ("override", "key"),
    [("metrics.real_selection=middle", "metrics.real_selection"), ("metrics.fake_jpeg_quality=101", "metrics.fake_jpeg_quality"),
     ("metrics.names=[fvd9_16f]", "metrics.names"), ("metrics.resize_mode=area", "metrics.resize_mode")],
)
def test_bad_values_fail_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        validate(_compose([override]).metrics)


def test_unknown_metric_lists_valid_names() -> None:
    with pytest.raises(KeyError, match="fvd2048_16f, fvd2048_128f"):
        get_metric("fvd")
    assert set(METRICS) >= {"fvd2048_16f", "fvd2048_128f", "fvd2048_128f_subsample8f", "fvd256_16f", "fid2048_16f", "isv2048_ucf"}


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
    assert json.loads(lines[1])["results"]["fvd256_16f"]["value"] == pytest.approx(fvd["value"], rel=1e-6)
