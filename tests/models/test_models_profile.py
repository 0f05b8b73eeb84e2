"""The profile entry point prints one JSON object with params, timings, memory and config."""

from __future__ import annotations

import json

from stylegan_v.profile import run

TINY = ["model.resolution=32", "model.synthesis.channel_base=256", "model.synthesis.channel_max=16",
        "model.discriminator.channel_base=256", "model.discriminator.channel_max=16"]


def test_profile_reports_params_timings_memory(compose, capsys) -> None:
    cfg = compose("model=stylegan_v", *TINY, "+profile.repeats=1", "+profile.batch_size=2")
    result = run(cfg)
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["params"] == result["params"]
    p = result["params"]
    assert p["G"] == p["G.mapping"] + p["G.motion"] + p["G.synthesis"] > 0 and p["D"] > 0
    assert p["G.mapping"] == 2 * (512 * 512 + 512)  # 2 layers, 512 -> 512
    assert set(result["timing_ms"]) == {"G_forward", "G_backward", "D_forward", "D_backward"}
    assert all(v > 0 for v in result["timing_ms"].values()) and result["peak_memory_mb"] > 0
    assert result["config"]["model"]["motion"]["kernel_size"] == 11
    assert result["config"]["profile"]["batch_size"] == 2
