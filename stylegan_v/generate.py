"""``python -m stylegan_v.generate checkpoint=… num_frames=… fps=… out=…``: stream videos of any length to mp4.

G is a function of (z, real-valued t), so any frame count, frame rate and start time works: frames are
produced ``chunk`` at a time and written straight to the file, so memory does not grow with the length.
Several videos are tiled side by side: independent ones, one content code with several motions
(``mode=same_content``), or one motion with several content codes (``mode=same_motion``). A conditional model
makes its classes in turn (all of them, or ``classes=[…]``), one per video.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from stylegan_v.configs import register_configs
from stylegan_v.data.encode import Mp4Writer
from stylegan_v.models.generator import time_chunks, to_rgb_uint8
from stylegan_v.models.noise import seed_from_z
from stylegan_v.tool_config import GenerateConfig
from stylegan_v.training.checkpoint import load_generator, resolve

log = logging.getLogger(__name__)
MAX_TIME = 1e6  # latest frame time, in training frames (11 hours at 25 fps)


def _codes(cfg: GenerateConfig, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Content codes z [N, z_dim] and motion seeds [N] for the chosen mode."""
    gen = torch.Generator().manual_seed(cfg.seed)
    z = torch.randn(cfg.num_videos, z_dim, generator=gen)
    motion = seed_from_z(z)
    if cfg.mode == "same_content":
        z = z[:1].expand(cfg.num_videos, -1)
    elif cfg.mode == "same_motion":
        motion = motion[:1].expand(cfg.num_videos)
    elif cfg.mode != "independent":
        raise ValueError(cfg.mode)
    return z, motion


def class_codes(cfg: GenerateConfig, num_classes: int) -> torch.Tensor | None:
    """One-hot classes [num_videos, num_classes] of a conditional model, the chosen classes in turn; else None."""
    if num_classes == 0:
        if cfg.classes:
            raise ValueError(f"classes={cfg.classes} but this model is unconditional")
        return None
    ids = list(cfg.classes) if cfg.classes else list(range(num_classes))
    bad = [i for i in ids if not 0 <= i < num_classes]
    if bad:
        raise ValueError(f"classes {bad} out of range: this model has classes 0..{num_classes - 1}")
    ids = torch.tensor([ids[i % len(ids)] for i in range(cfg.num_videos)])
    return torch.nn.functional.one_hot(ids, num_classes).float()


def run(cfg: GenerateConfig) -> dict[str, Any]:
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    G, train_cfg = load_generator(cfg.checkpoint, device)
    data_fps = float(train_cfg["dataset"].get("fps") or 25.0)
    fps = cfg.fps or data_fps
    step = data_fps / fps  # training frames per output frame
    last = cfg.start + (cfg.num_frames - 1) * step
    if last > MAX_TIME:  # motion codes cover the whole time span: memory grows with it
        raise ValueError(f"fps={fps:g} with num_frames={cfg.num_frames} and start={cfg.start:g} puts the last frame "
                         f"at t = {last:.3g} training frames; generate supports up to {MAX_TIME:.0e} "
                         f"(at the data's {data_fps:g} fps): raise fps or lower num_frames/start")
    z, motion = _codes(cfg, G.z_dim)
    z, motion = z.to(device), motion.to(device)
    c = class_codes(cfg, int(getattr(G, "c_dim", 0)))
    c = None if c is None else c.to(device)
    out = Path(cfg.out)
    with Mp4Writer(out, fps) as writer, torch.inference_mode():
        for t in tqdm(time_chunks(cfg.num_videos, cfg.num_frames, cfg.chunk, cfg.start, step, device),
                      total=-(-cfg.num_frames // cfg.chunk), unit="chunk", desc=f"generate {out.name}"):
            video = G(z, t, c, motion_seed=motion, truncation_psi=cfg.truncation_psi)  # [N, T, 3, H, W]
            frames = to_rgb_uint8(video)
            N, T, C, H, W = frames.shape
            writer.write(frames.permute(1, 3, 0, 4, 2).reshape(T, H, N * W, C).cpu().numpy())  # videos side by side
    log.info("wrote %s: %d frames at %.3g fps from %s", out, writer.frames_written, fps, resolve(cfg.checkpoint))
    return {"out": str(out), "frames": writer.frames_written, "fps": fps}


register_configs()


@hydra.main(config_path="../conf", config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(OmegaConf.to_object(cfg))


if __name__ == "__main__":
    main()
