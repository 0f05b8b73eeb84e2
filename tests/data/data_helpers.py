"""Helpers of the data-room tests: compose a dataset option, make broken mp4s, recognise JPEG quality."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from stylegan_v.configs import register_configs

REPO = Path(__file__).resolve().parents[2]


def compose_dataset(name: str, *overrides: str) -> tuple[Any, dict[str, Any]]:
    """Compose ``conf/`` with dataset option ``name``; returns (typed DatasetConfig, plain settings dict)."""
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        try:  # once the lead adds `dataset` to the root defaults, plain `dataset=` is the way
            cfg = compose("config", overrides=[f"dataset={name}", *overrides])
        except ConfigCompositionException:
            cfg = compose("config", overrides=[f"+dataset={name}", *overrides])
    return OmegaConf.to_object(cfg.dataset), OmegaConf.to_container(cfg.dataset, resolve=True)


def faststart_copy(src: Path, dst: Path) -> None:
    """Remux ``src`` with the index (moov) in front, so a truncated copy still opens and fails mid-decode."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream_in = inp.streams.video[0]
        stream_out = out.add_stream_from_template(stream_in)
        for packet in inp.demux(stream_in):
            if packet.dts is None:
                continue
            packet.stream = stream_out
            out.mux(packet)




def jpeg_bytes_quality_tables(quality: int, mode: str = "RGB") -> dict[int, Any]:
    """Quantisation tables Pillow writes for ``quality`` (to recognise the quality of a stored frame)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (16, 16), 100).save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).quantization
