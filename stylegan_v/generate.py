"""``python -m stylegan_v.generate checkpoint=… num_frames=… fps=… out=…``: stream videos of any length to mp4.

G is a function of (z, real-valued t), so any frame count, frame rate and start time works: frames are
produced ``chunk`` at a time and written straight to the file, so memory does not grow with the length.
Several videos are tiled side by side: independent ones, one content code with several motions
(``mode=same_content``), or one motion with several content codes (``mode=same_motion``). A conditional model
makes its classes in turn (all of them, or ``classes=[…]``), one per video.

Latent analysis, for G3AN and StyleGAN-V alike (G3AN appendix C.3, C.4): ``mode=manipulate_appearance`` or
``mode=manipulate_motion`` sweeps dimension ``dim`` of one code over ``values``, all else fixed, one video per
value; ``mode=motion_switch`` renders two sampled (appearance, motion, class) sets, then the two with their
motions (and classes) swapped. These stack their videos top to bottom, one row per code set (:mod:`.latents`).

Beside the mp4, ``<name>.png`` holds a few evenly spaced frames of every video, one row per video.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from stylegan_v.checks import require
from stylegan_v.cli import entry_point
from stylegan_v.configs import register_configs
from stylegan_v.tool_config import GenerateConfig

if TYPE_CHECKING:  # torch and the models are imported where used, so that --help answers at once
    import torch

    from stylegan_v.latents import CodeSets

log = logging.getLogger(__name__)
MAX_TIME = 1e6  # latest frame time, in training frames (11 hours at 25 fps)
ANALYSIS_MODES = ("manipulate_appearance", "manipulate_motion", "motion_switch")  # one row per code set
GRID_COLUMNS = 8  # frames per video in the PNG grid


def _codes(cfg: GenerateConfig, z_dim: int, appearance_dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Content codes z [N, z_dim] and motion seeds [N] for the chosen mode. ``appearance_dim``: a model whose
    z is [appearance, motion] (G3AN, which has no motion seed) shares or varies those parts of z instead."""
    import torch

    from stylegan_v.models.noise import seed_from_z

    gen = torch.Generator().manual_seed(cfg.seed)
    z = torch.randn(cfg.num_videos, z_dim, generator=gen)
    motion = seed_from_z(z)
    if appearance_dim is not None and cfg.mode in ("same_content", "same_motion"):
        part = slice(0, appearance_dim) if cfg.mode == "same_content" else slice(appearance_dim, z_dim)
        z[:, part] = z[:1, part]
    elif cfg.mode == "same_content":
        z = z[:1].expand(cfg.num_videos, -1)
    elif cfg.mode == "same_motion":
        motion = motion[:1].expand(cfg.num_videos)
    elif cfg.mode != "independent":
        raise ValueError(cfg.mode)
    return z, motion


def class_codes(cfg: GenerateConfig, num_classes: int, count: int | None = None) -> torch.Tensor | None:
    """One-hot classes [count, num_classes] of a conditional model (count: num_videos unless given), the chosen
    classes in turn; else None."""
    import torch

    count = cfg.num_videos if count is None else count
    if num_classes == 0:
        if cfg.classes:
            raise ValueError(f"classes={cfg.classes} but this model is unconditional")
        return None
    ids = list(cfg.classes) if cfg.classes else list(range(num_classes))
    bad = [i for i in ids if not 0 <= i < num_classes]
    if bad:
        raise ValueError(f"classes {bad} out of range: this model has classes 0..{num_classes - 1}")
    ids = torch.tensor([ids[i % len(ids)] for i in range(count)])
    return torch.nn.functional.one_hot(ids, num_classes).float()


def analysis_sets(cfg: GenerateConfig, G: torch.nn.Module, last: float) -> CodeSets:
    """The code sets of a latent-analysis mode, one per row; ``last`` is the latest frame time."""
    import torch

    from stylegan_v.latents import code_sizes, manipulate, sample, switch_motion

    gen = torch.Generator().manual_seed(cfg.seed)
    num_classes = int(getattr(G, "c_dim", 0))
    sizes = code_sizes(G)
    if cfg.mode != "manipulate_appearance" and sizes["motion"] == 0:
        raise ValueError(f"mode={cfg.mode} needs a motion input, and this model has none (motion.kind=none)")
    if cfg.mode == "motion_switch":
        return switch_motion(sample(G, 2, gen, class_codes(cfg, num_classes, 2)))
    elif cfg.mode in ("manipulate_appearance", "manipulate_motion"):
        part = cfg.mode.removeprefix("manipulate_")
        require(cfg.dim < sizes[part], "dim", f"must be below {sizes[part]}, the size of this model's {part} code",
                cfg.dim)
        base = sample(G, 1, gen, class_codes(cfg, num_classes, 1), noise_until=last if part == "motion" else None)
        return manipulate(base, part, cfg.dim, cfg.values)
    else:
        raise ValueError(f"mode={cfg.mode} is not a latent-analysis mode; those are {ANALYSIS_MODES}")


def mode_inputs(cfg: GenerateConfig, G: torch.nn.Module, last: float,
                device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """(z, c, G keyword arguments) of the videos ``cfg.mode`` asks for, one per row: what ``run`` renders, and
    what the report's G3AN grids render. ``last``: the latest frame time the videos reach."""
    from stylegan_v.latents import g_inputs
    from stylegan_v.models.g3an import G3ANGenerator

    if cfg.mode in ANALYSIS_MODES:
        return g_inputs(G, analysis_sets(cfg, G, last).to(device))
    z, motion = _codes(cfg, G.z_dim, G.cfg.za_dim if isinstance(G, G3ANGenerator) else None)
    c = class_codes(cfg, int(getattr(G, "c_dim", 0)))
    return z.to(device), None if c is None else c.to(device), {"motion_seed": motion.to(device)}


def grid_indices(num_frames: int) -> list[int]:
    """Up to GRID_COLUMNS evenly spaced output frames, first and last included."""
    import torch

    picks = torch.linspace(0, num_frames - 1, min(GRID_COLUMNS, num_frames)).round().long()
    return sorted(set(picks.tolist()))


def write_grid(path: Path, frames: torch.Tensor) -> Path:
    """uint8 frames [N, F, 3, H, W] -> a PNG with one row per video, its F frames left to right."""
    from PIL import Image

    from stylegan_v.files import atomic_write_bytes

    N, F, C, H, W = frames.shape
    image = frames.permute(0, 3, 1, 4, 2).reshape(N * H, F * W, C)  # videos down, frames across
    buffer = io.BytesIO()
    Image.fromarray(image.cpu().numpy()).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def run(cfg: GenerateConfig) -> dict[str, Any]:
    import torch

    from stylegan_v.data.encode import Mp4Writer
    from stylegan_v.models.generator import time_chunks, to_rgb_uint8
    from stylegan_v.progress import progress_bar
    from stylegan_v.training.checkpoint import load_generator, resolve

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
    stacked = cfg.mode in ANALYSIS_MODES
    z, c, kwargs = mode_inputs(cfg, G, last, device)
    out = Path(cfg.out)
    picks, grid = grid_indices(cfg.num_frames), []
    with Mp4Writer(out, fps) as writer, torch.inference_mode():
        chunks = time_chunks(z.shape[0], cfg.num_frames, cfg.chunk, cfg.start, step, device)
        for i, t in enumerate(progress_bar(chunks, total=-(-cfg.num_frames // cfg.chunk), unit="chunk",
                                           desc=f"generate {out.name}")):
            video = G(z, t, c, truncation_psi=cfg.truncation_psi, **kwargs)  # [N, T, 3, H, W]
            frames = to_rgb_uint8(video)
            N, T, C, H, W = frames.shape
            first = i * cfg.chunk  # output index of this chunk's first frame
            grid.append(frames[:, [p - first for p in picks if first <= p < first + T]])
            if stacked:
                tile = frames.permute(1, 0, 3, 4, 2).reshape(T, N * H, W, C)  # videos top to bottom
            else:
                tile = frames.permute(1, 3, 0, 4, 2).reshape(T, H, N * W, C)  # videos side by side
            writer.write(tile.cpu().numpy())
    grid_path = write_grid(out.with_suffix(".png"), torch.cat(grid, dim=1))
    log.info("wrote %s (%d rows, grid %s): %d frames at %.3g fps from %s", out, z.shape[0], grid_path,
             writer.frames_written, fps, resolve(cfg.checkpoint))
    return {"out": str(out), "frames": writer.frames_written, "fps": fps, "grid": str(grid_path), "rows": z.shape[0]}


register_configs()


@entry_point("generate", config_name="generate")
def main(cfg: DictConfig) -> None:
    run(OmegaConf.to_object(cfg))


if __name__ == "__main__":
    main()
