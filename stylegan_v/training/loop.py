"""The training loop: phases, EMA, adaptive augmentation, ticks, snapshots, checkpoints, clean stops.

It only orchestrates: networks come from ``models.build_models``, clips from ``data``, losses from
:mod:`.loss`, files from :mod:`.checkpoint`. A step is ``G`` → ``D`` → (every ``r1_interval`` steps) ``Dreg``
(G3AN's recipe: ``D`` → ``G`` on the same fake clips), each over the micro-batches of this rank with gradients
averaged over ranks by one all-reduce per phase.

Stopping is cooperative: a signal (Slurm's USR2 before the time limit or on preemption, SIGTERM, Ctrl-C)
only sets a flag; signals are held while a step runs, and at the next step boundary all ranks agree to stop,
rank 0 writes a checkpoint, and the loop returns ``"interrupted"``. The state is therefore always that of a
whole number of steps, and N steps equal N/2 + resume + N/2 bit for bit on the CPU.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import random
import resource
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler

from stylegan_v.checks import require
from stylegan_v.configs import validate
from stylegan_v.data.augment import AugmentPipe
from stylegan_v.data.build import open_prepared
from stylegan_v.data.sampling import ClipDataset, VideoFirstSampler, sample_fake_times, worker_init_fn
from stylegan_v.files import append_jsonl, atomic_write
from stylegan_v.launch.distributed import DistributedEnv
from stylegan_v.metrics.config import MetricsConfig
from stylegan_v.metrics.records import read_records, write_record
from stylegan_v.metrics.registry import Detectors, get_metric, run_floor, run_metric
from stylegan_v.metrics.video_source import open_video_source
from stylegan_v.models.generator import to_rgb_uint8
from stylegan_v.models.registry import build_models
from stylegan_v.tracking.config import TrackingConfig
from stylegan_v.tracking.cost import CostMeter, cost_metrics
from stylegan_v.tracking.run import NullTracker
from stylegan_v.training import checkpoint
from stylegan_v.training.config import TrainingConfig
from stylegan_v.training.fakes import video_generator
from stylegan_v.training.g3an_loss import G3ANLoss
from stylegan_v.training.loss import VideoGANLoss

log = logging.getLogger(__name__)

DATA_RECORD = "data.jsonl"  # in the run directory: the dataset version of every job segment (start, resumes)
STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)
# What a signal asks for, by priority (ranks agree on the highest): USR2 = checkpoint and requeue
# (Slurm's time-limit warning, preemption); TERM/INT = checkpoint and stop (scancel, Ctrl-C).
STOP_PRIORITY = {signal.SIGUSR2: 1, signal.SIGTERM: 2, signal.SIGINT: 2}


@dataclass
class Progress:
    """Counters that a checkpoint carries across job segments."""

    step: int = 0  # optimiser steps done
    nimg: int = 0  # real frames shown to D (videos x k)
    tick: int = 0  # ticks done
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the cost meter's state

    @property
    def kimg(self) -> float:
        return self.nimg / 1000.0


class _SkipSampler(Sampler):
    """Resume the infinite video-first stream where it stopped: the first ``skip`` items are drawn and dropped."""

    def __init__(self, inner: Sampler, skip: int) -> None:
        self.inner, self.skip = inner, skip

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(iter(self.inner), self.skip, None)


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("training.device=cuda but CUDA is not available here")
    return torch.device(name)


def _rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain data (what a checkpoint may hold)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _lazy_adam(module: nn.Module, lr: float, betas: list[float], eps: float, interval: int | None) -> torch.optim.Adam:
    """Adam for a module regularised every ``interval`` steps: lr x i/(i+1), betas ** (i/(i+1)) (StyleGAN2);
    ``interval=None``: never regularised, plain Adam. A module with ``param_groups(lr)`` sets its own learning
    rates per part (e.g. a video discriminator at a tenth of the image one's)."""
    ratio = 1.0 if interval is None else interval / (interval + 1)
    groups = module.param_groups(lr * ratio) if hasattr(module, "param_groups") else module.parameters()
    return torch.optim.Adam(groups, lr=lr * ratio, betas=tuple(b**ratio for b in betas), eps=eps,
                            foreach=True)  # multi-tensor updates on the CPU too (CUDA's default)


def one_hot(labels: Tensor, num_classes: int) -> Tensor | None:
    """[B] int64 class ids -> [B, num_classes] float; None for an unconditional model."""
    if num_classes == 0:
        return None
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


class Trainer:
    """One training run on this rank. ``run()`` returns ``"finished"`` or ``"interrupted"``."""

    def __init__(self, cfg: DictConfig, run_dir: Path, env: DistributedEnv,
                 tracker: NullTracker | None = None, typed: Any = None) -> None:
        """``typed``: ``configs.validate(cfg)`` when the caller has it (the job validates once); else built here."""
        self.cfg, self.run_dir, self.env = cfg, Path(run_dir), env
        typed = typed if typed is not None else validate(cfg)
        self.tcfg: TrainingConfig = typed.training
        self.mcfg: MetricsConfig | None = typed.metrics
        self.tracker = tracker or NullTracker(TrackingConfig())
        self.device = _resolve_device(self.tcfg.device)
        self.stop_priority = 0  # 0 = keep going; see STOP_PRIORITY
        self.stop_signal: signal.Signals | None = None  # the signal all ranks agreed on, once stopped
        t = self.tcfg
        if t.batch_size % env.world_size:
            raise ValueError(f"training.batch_size={t.batch_size} must be divisible by the {env.world_size} ranks")
        self.batch_rank = t.batch_size // env.world_size  # videos per step on this rank
        self.batch_micro = min(t.batch_per_rank or self.batch_rank, self.batch_rank)
        if self.batch_rank % self.batch_micro:
            raise ValueError(f"training.batch_per_rank={t.batch_per_rank} must divide the {self.batch_rank} "
                             f"videos per rank")
        self.num_micro = self.batch_rank // self.batch_micro

        self.num_frames = int(cfg.dataset.sampling.num_frames)
        self.resolution = int(cfg.dataset.resolution)
        # The published version if it was built with this config's settings (else refused, or prepared with
        # dataset.on_mismatch=prepare), held until the process ends: a rebuild meanwhile does not reach this run.
        self.videos = open_prepared(OmegaConf.to_container(cfg.dataset, resolve=True), Path(cfg.paths.data_dir),
                                    build_missing=False)
        self.model_cfg = typed.model  # the typed section; what the data decides is written into both copies
        self.num_classes = self._fit_model_to_data()
        # Same seed on every rank for the weights, so all ranks start identical without a broadcast.
        torch.manual_seed(cfg.seed)
        G, D = build_models(self.model_cfg, self.resolution, self.num_frames)
        self.G, self.D = G.to(self.device).train(), D.to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.augment = (AugmentPipe(p=t.augment.p, video_consistent=t.augment.video_consistent).to(self.device)
                        if t.augment.mode != "off" else None)
        if t.recipe == "g3an":  # two Ds with their own losses, plain Adam (no lazy regularisation)
            self.loss: VideoGANLoss | G3ANLoss = G3ANLoss(self.G, self.D)
            g_interval, d_interval = None, None
        else:
            self.loss = VideoGANLoss(self.G, self.D, self.augment, t.gamma(self.resolution))
            g_interval, d_interval = t.g_reg_interval, t.r1_interval
        self.opt_G = _lazy_adam(self.G, t.learning_rate(t.lr_g, self.resolution), t.betas, t.eps, g_interval)
        self.opt_D = _lazy_adam(self.D, t.learning_rate(t.lr_d, self.resolution), t.betas, t.eps, d_interval)
        self.progress = Progress()
        # ADA's real signs since its last adjustment, this rank's; checkpointed, since a checkpoint can fall
        # between two adjustments
        self._ada_signs: list[Tensor] = []
        resumed = self._resume()
        self._record_data(resumed)
        if not resumed and t.init_from:
            self._init_from(t.init_from)
        # Cost: segments accumulate across requeues inside the checkpoint (Progress.extra["cost"]).
        self.cost = CostMeter()
        if "cost" in self.progress.extra:
            self.cost.load_state_dict(self.progress.extra["cost"])
        self.cost.start_segment(devices=env.world_size, device_kind="gpu" if self.device.type == "cuda" else "cpu",
                                job_id=os.environ.get("SLURM_JOB_ID"))
        # Different streams per rank from here on (z, fake times, augmentation, data).
        if not resumed:
            torch.manual_seed(cfg.seed * 1_000_003 + env.rank)
            random.seed(cfg.seed + env.rank)
            np.random.seed((cfg.seed + env.rank) % 2**32)
        self._batches = self._data_stream()

    def _fit_model_to_data(self) -> int:
        """Write what the data decides into the model config (the YAML copy goes into checkpoints, so they rebuild
        the same networks; the typed copy builds them now): the colour channels, and the classes of a
        conditional run (training.cond). Returns the classes (0: none)."""
        model = self.cfg.model
        model.img_channels = self.model_cfg.img_channels = self.videos.channels
        classes = len(self.videos.manifest.get("label_names", []))
        key = "num_classes" if model.name == "g3an" else "c_dim"
        if not self.tcfg.cond:
            if int(model.get(key, 0)):
                raise ValueError(f"model.{key}={model.get(key)} but training.cond=false: set training.cond=true "
                                 "to train on the dataset's labels (the number of classes comes from the dataset)")
            return 0
        if classes == 0 or bool((self.videos.labels < 0).any()):
            raise ValueError(f"training.cond=true but dataset {self.cfg.dataset.name} has no class label for "
                             f"every video (set dataset.label_from when preparing it)")
        if int(model.get(key, 0)) not in (0, classes):
            raise ValueError(f"model.{key}={model.get(key)} but dataset {self.cfg.dataset.name} has {classes} classes")
        model[key] = classes
        setattr(self.model_cfg, key, classes)
        return classes

    def _init_from(self, path: str) -> None:
        """Start from another run's weights (G, D, G_ema), e.g. an official snapshot after convert_official."""
        _, state = checkpoint.load_from(path, keys=("G", "D", "G_ema"))
        for name, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            try:
                module.load_state_dict(state[name])
            except RuntimeError as err:  # shapes differ: another resolution, width, colour channels, classes
                first = str(err).split("\n")[1].strip() if "\n" in str(err) else str(err)
                raise ValueError(f"training.init_from={path} holds a different {name} than this config builds "
                                 f"(compare model.* and the dataset's resolution/channels): {first}") from None
        if self.env.is_main:
            log.info("initialised G, D and G_ema from %s", path)

    # ------------------------------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "augment_p": float(self.augment.p) if self.augment is not None else 0.0,
            "progress": {"step": self.progress.step, "nimg": self.progress.nimg, "tick": self.progress.tick,
                         "extra": {**self.progress.extra, "cost": self.cost.state_dict()}},
            "config": OmegaConf.to_container(self.cfg, resolve=True, enum_to_str=True),
        }

    def _resume(self) -> bool:
        try:
            found = checkpoint.load_latest(self.run_dir)
        except checkpoint.NoUsableCheckpoint as error:
            if not self.tcfg.allow_restart:
                raise checkpoint.NoUsableCheckpoint(f"{error}; refusing to start again from step 0 (that would "
                                                    "reset the progress and the cost meter): set "
                                                    "training.allow_restart=true to do so") from None
            log.warning("%s; starting again from step 0 (training.allow_restart=true)", error)
            return False
        if found is None:
            return False
        path, state = found
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        if self.augment is not None:
            self.augment.set_p(state["augment_p"])
        self.progress = Progress(**state["progress"])
        rng_states = state["rng"]
        if len(rng_states) != self.env.world_size:
            log.warning("checkpoint has RNG states of %d ranks, this job has %d: reseeding", len(rng_states),
                        self.env.world_size)
            torch.manual_seed(self.cfg.seed * 1_000_003 + self.env.rank + self.progress.step)
        else:
            _set_rng_state(rng_states[self.env.rank])
            # Checkpoints written before the signs were kept have none: that resume adjusts on fewer signs.
            pending = state.get("ada_signs", [None] * self.env.world_size)[self.env.rank]
            self._ada_signs = list(pending.to(self.device).unbind(0)) if pending is not None else []
        if self.env.is_main:
            log.info("resumed from %s at kimg %.1f (step %d)", path, self.progress.kimg, self.progress.step)
        return True

    def _record_data(self, resumed: bool) -> None:
        """The dataset version this job segment trains on: carried in every checkpoint, appended to
        ``<run_dir>/data.jsonl`` at start and at every resume; a resume on other content is refused unless
        ``training.allow_data_change``."""
        now = {"name": self.cfg.dataset.name, "content_hash": self.videos.content_hash,
               "config_hash": self.videos.manifest.get("config_hash"), "version": str(self.videos.path)}
        before = self.progress.extra.get("dataset") if resumed else None
        changed = before is not None and before["content_hash"] != now["content_hash"]
        if changed:
            require(self.tcfg.allow_data_change, "training.allow_data_change",
                    f"must be true to resume {self.run_dir.name} on other data: its checkpoint (step "
                    f"{self.progress.step}) trained on {before['name']} with content hash {before['content_hash'][:12]}, "
                    f"the dataset now holds {now['content_hash'][:12]} ({now['version']})", False)
            log.warning("resuming on changed data (training.allow_data_change=true): content hash %s -> %s",
                        before["content_hash"][:12], now["content_hash"][:12])
        self.progress.extra["dataset"] = now
        if self.env.is_main:
            append_jsonl(self.run_dir / DATA_RECORD, {
                "event": "resume" if resumed else "start", "step": self.progress.step, **now,
                "previous_content_hash": before["content_hash"] if changed else None,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "slurm_job_id": os.environ.get("SLURM_JOB_ID")})

    def save_checkpoint(self) -> Path | None:
        """Every rank sends its RNG state and its pending ADA signs to rank 0, which writes the file."""
        signs = torch.stack(self._ada_signs).detach().cpu() if self._ada_signs else torch.zeros(0)
        states = [(_rng_state(), signs)]
        if self.env.is_distributed:
            gathered: list[Any] = [None] * self.env.world_size
            dist.all_gather_object(gathered, states[0])
            states = gathered
        if not self.env.is_main:
            return None
        path = checkpoint.save(self.run_dir, self.progress.step, {**self.state_dict(), "rng": [s[0] for s in states],
                                                                   "ada_signs": [s[1] for s in states]})
        checkpoint.prune(self.run_dir, self.tcfg.keep_checkpoints)
        log.info("checkpoint %s", path)
        return path

    # ------------------------------------------------------------------------------------------- data

    def _data_stream(self) -> Iterator[dict[str, Tensor]]:
        s = self.cfg.dataset.sampling
        clips = ClipDataset(self.videos, num_frames=s.num_frames, mode=s.mode, max_dist=s.max_dist,
                            spans=list(s.spans) if s.spans is not None else None, stride=s.stride,
                            strides=list(s.strides), mirror=self.tcfg.mirror, max_num_frames=s.max_num_frames)
        sampler = VideoFirstSampler(self.videos.num_videos, seed=self.cfg.seed, rank=self.env.rank,
                                    world_size=self.env.world_size)
        loader = DataLoader(
            clips, batch_size=self.batch_rank, sampler=_SkipSampler(sampler, self.progress.step * self.batch_rank),
            num_workers=self.tcfg.num_workers, worker_init_fn=worker_init_fn, drop_last=True,
            pin_memory=self.device.type == "cuda", persistent_workers=self.tcfg.num_workers > 0,
            # A private generator: the loader must not draw from the global RNG that drives z and t.
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )
        self._loader = loader
        return iter(loader)

    def _fakes(self, batch: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """z, frame times and classes of ``batch`` fake videos: each takes a random real video's length (and
        label) and samples its frames as real clips are, at a fractional offset (:func:`sample_fake_times`)."""
        s = self.cfg.dataset.sampling
        # A generator of fixed-length videos (G3AN: 16 frames) only has times below its length.
        max_frames = min(int(s.max_num_frames), getattr(self.G, "video_frames", int(s.max_num_frames)))
        times, videos = sample_fake_times(self.videos.lengths, batch, self.num_frames, np.random, mode=s.mode,
                                          max_dist=s.max_dist, spans=list(s.spans) if s.spans is not None else None,
                                          stride=s.stride, max_num_frames=max_frames)
        z = torch.randn(batch, self.G.z_dim, device=self.device)
        c = one_hot(torch.from_numpy(self.videos.labels[videos]), self.num_classes)
        return z, torch.from_numpy(times).to(self.device), None if c is None else c.to(self.device)

    # ------------------------------------------------------------------------------------------ steps

    def _sync_grads(self, module: nn.Module) -> None:
        """Average the gradients over ranks. Parameters outside this phase's graph keep no gradient, so Adam
        leaves them alone (the R1 phase of a multi-head D only reaches its R1 head); every rank builds the
        same graph, so the set is the same on all ranks."""
        params = [p for p in module.parameters() if p.requires_grad and p.grad is not None]
        if not params:
            return
        if self.env.is_distributed:
            flat = torch.cat([p.grad.flatten() for p in params])
            dist.all_reduce(flat)
            flat /= self.env.world_size
            torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        else:
            for p in params:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)

    def _phase(self, name: str, module: nn.Module, opt: torch.optim.Optimizer, real: Tensor, real_t: Tensor,
               real_c: Tensor | None, gain: float, stats: dict[str, list[Tensor]],
               codes: list[tuple[Tensor, Tensor, Tensor | None]] | None = None, grad_G: bool = False) -> None:
        """``codes``: each micro-batch's (z, fake times, classes), else drawn here; ``grad_G``: G's graph is built
        even when training D (G3AN's G phase reuses the D phase's fake clips)."""
        self.G.requires_grad_(module is self.G or grad_G)
        self.D.requires_grad_(module is self.D)
        opt.zero_grad(set_to_none=True)
        for mb in range(self.num_micro):
            sl = slice(mb * self.batch_micro, (mb + 1) * self.batch_micro)
            z, fake_t, fake_c = codes[mb] if codes is not None else self._fakes(self.batch_micro)
            out = self.loss.accumulate_gradients(name, real[sl], real_t[sl], z, fake_t, gain / self.num_micro,
                                                 real_c=None if real_c is None else real_c[sl], fake_c=fake_c)
            for key, value in out.items():
                stats[key].append(value)
        self._sync_grads(module)
        opt.step()

    def train_step(self, stats: dict[str, list[Tensor]]) -> None:
        t = self.tcfg
        batch = next(self._batches)
        real = batch["frames"].to(self.device, non_blocking=True).float() / 127.5 - 1  # [B, k, 3, H, W]
        real_t = batch["times"].to(self.device).float()  # [B, k]
        real_c = one_hot(batch["label"], self.num_classes)
        real_c = None if real_c is None else real_c.to(self.device)
        self.G.set_progress(min(self.progress.kimg / t.total_kimg, 1.0))
        signs_before = len(stats.setdefault("D/real_sign", []))  # ADA gathers this step's from here
        if t.recipe == "g3an":  # the public G3AN trainer's order: D, then G scored on the same fake clips
            codes = [self._fakes(self.batch_micro) for _ in range(self.num_micro)]
            self._phase("D", self.D, self.opt_D, real, real_t, real_c, 1.0, stats, codes=codes, grad_G=True)
            self._phase("G", self.G, self.opt_G, real, real_t, real_c, 1.0, stats, codes=codes)
        else:
            self._phase("G", self.G, self.opt_G, real, real_t, real_c, 1.0, stats)
            self._phase("D", self.D, self.opt_D, real, real_t, real_c, 1.0, stats)
            if self.loss.r1_gamma > 0 and self.progress.step % t.r1_interval == 0:
                self._phase("Dreg", self.D, self.opt_D, real, real_t, real_c, float(t.r1_interval), stats)
        self.progress.step += 1
        self.progress.nimg += t.batch_size * self.num_frames  # kimg counts frames
        self._update_ema()
        self._adjust_augment(stats["D/real_sign"][signs_before:])

    def _update_ema(self) -> None:
        t = self.tcfg
        if t.ema_kimg == 0:  # no EMA: G_ema follows G exactly
            with torch.inference_mode():
                for e, p in zip(self.G_ema.state_dict().values(), self.G.state_dict().values()):
                    e.copy_(p)
            return
        ema_nimg = t.ema_kimg * 1000 * t.batch_size / 32  # half-life in videos
        if t.ema_rampup is not None:  # ... at most this fraction of the frames seen so far (official)
            ema_nimg = min(ema_nimg, self.progress.nimg * t.ema_rampup)
        beta = 0.5 ** (t.batch_size / max(ema_nimg, 1e-8))
        with torch.inference_mode():  # one multi-tensor lerp: p_ema <- p + beta (p_ema - p)
            torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - beta)
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)

    def _adjust_augment(self, step_signs: list[Tensor]) -> None:
        """ADA: every ``interval`` steps, p moves towards the target of E[sign(D(real))] over all real logits since
        the last adjustment: those of the D phase and, on R1 steps, of the R1 phase (as the official loss reports
        them both). Micro-batches are equal, so the mean of their means is the mean over logits."""
        a = self.tcfg.augment
        if self.augment is None or a.mode != "ada":
            return
        self._ada_signs.extend(step_signs)
        if self.progress.step % a.interval:
            return
        signs = torch.stack(self._ada_signs).mean().reshape(1)
        if self.env.is_distributed:
            dist.all_reduce(signs)
            signs /= self.env.world_size
        self.augment.adjust(float(signs), self.tcfg.batch_size * a.interval, a.target, a.speed_kimg)
        self._ada_signs.clear()

    # -------------------------------------------------------------------------------- orchestration

    @contextmanager
    def _signals_held(self) -> Iterator[None]:
        """Hold stop signals during a step: they are delivered (and only set a flag) at its end."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _install_stop_handlers(self) -> dict[int, Any]:
        previous = {}

        def request_stop(signum: int, frame: Any) -> None:
            log.warning("rank %d: %s received; stopping at the end of this step", self.env.rank,
                        signal.Signals(signum).name)
            self.stop_priority = max(self.stop_priority, STOP_PRIORITY[signal.Signals(signum)])

        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, request_stop)
        return previous

    def _agree_to_stop(self) -> bool:
        """One tiny all-reduce per step, so every rank stops at the same step boundary."""
        flag = torch.tensor([float(self.stop_priority)])
        if self.env.is_distributed:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        priority = int(flag.item())
        if priority:
            self.stop_signal = signal.SIGUSR2 if priority == 1 else signal.SIGTERM
        return priority > 0

    def done(self) -> bool:
        """The run has reached total_kimg or max_steps (its last checkpoint is written before run() returns)."""
        t = self.tcfg
        return self.progress.nimg >= t.total_kimg * 1000 or (t.max_steps is not None and self.progress.step >= t.max_steps)

    def run(self) -> str:
        """Train until total_kimg / max_steps, or until asked to stop; either way the last state is saved."""
        previous_handlers = self._install_stop_handlers()
        try:
            return self._run()
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            if self.tcfg.num_workers > 0:
                del self._batches  # shuts the data workers down before the process exits
                self._batches = iter(())

    def _run(self) -> str:
        t = self.tcfg
        stats: dict[str, list[Tensor]] = defaultdict(list)
        tick_start_nimg, tick_start_time = self.progress.nimg, time.monotonic()
        if self.env.is_main:
            log.info("training %s on %s: %d rank(s) x %d videos (%d micro-batches), k=%d, %d²; 1 kimg = 1000 "
                     "frames shown to D", self.cfg.model.name, self.device, self.env.world_size, self.batch_rank,
                     self.num_micro, self.num_frames, self.resolution)
        if self.done() and self.progress.step > 0:
            self.score_finished_run()
        while not self.done():
            with self._signals_held():
                self.train_step(stats)
            if self._agree_to_stop():
                self.save_checkpoint()
                return "interrupted"
            if self.progress.nimg >= tick_start_nimg + t.kimg_per_tick * 1000 or self.done():
                self.progress.tick += 1
                snapshot_due = self.progress.tick % t.snapshot_ticks == 0 or self.done()
                # A snapshot tick leaves the cost to snapshot(): one point per step, measured after the checkpoint.
                self._log_tick(stats, tick_start_nimg, tick_start_time, with_cost=not snapshot_due)
                stats.clear()
                tick_start_nimg, tick_start_time = self.progress.nimg, time.monotonic()
                if snapshot_due:
                    self.snapshot()
        return "finished"

    def _log_tick(self, stats: dict[str, list[Tensor]], start_nimg: int, start_time: float,
                  with_cost: bool = True) -> None:
        means = {key: float(torch.stack(values).float().mean()) for key, values in stats.items() if values}
        if self.env.is_distributed:
            keys = sorted(means)
            values = torch.tensor([means[k] for k in keys], dtype=torch.float64)
            dist.all_reduce(values)
            means = dict(zip(keys, (values / self.env.world_size).tolist()))
        elapsed = time.monotonic() - start_time
        kimg_done = (self.progress.nimg - start_nimg) / 1000
        means.update({
            "progress/kimg": self.progress.kimg, "progress/step": float(self.progress.step),
            "timing/sec_per_kimg": elapsed / max(kimg_done, 1e-9), "timing/sec_per_tick": elapsed,
            "augment/p": float(self.augment.p) if self.augment is not None else 0.0,
            "resources/peak_memory_mb": _peak_memory_mb(self.device),
        })
        # ETA at this tick's speed: the kimg left to total_kimg, or to max_steps when that comes first
        t = self.tcfg
        left_kimg = max(t.total_kimg - self.progress.kimg, 0.0)
        if t.max_steps is not None:
            left_kimg = min(left_kimg, max(t.max_steps - self.progress.step, 0) * t.batch_size * self.num_frames / 1000)
        means["timing/eta_sec"] = left_kimg * means["timing/sec_per_kimg"]
        eta_min, eta_sec = divmod(round(means["timing/eta_sec"]), 60)
        if self.env.is_main:
            log.info("tick %d  kimg %.3f  step %d  sec/kimg %.1f  eta %d:%02d:%02d  G %.3f  D %.3f  p %.3f  mem %.0f MB",
                     self.progress.tick, self.progress.kimg, self.progress.step, means["timing/sec_per_kimg"],
                     *divmod(eta_min, 60), eta_sec, means.get("loss/G", float("nan")),
                     means.get("loss/D", float("nan")), means["augment/p"], means["resources/peak_memory_mb"])
            if self.progress.tick % self.tracker.cfg.log_every_ticks == 0:
                if with_cost:
                    means.update(cost_metrics(self.cost, with_sacct=False))
                self.tracker.log_metrics(means, step=self.tracker.step_for(self.progress.nimg))

    def snapshot(self) -> None:
        """Checkpoint, sample grid, snapshot metrics (rank 0), and the cost with Slurm's own figure beside ours.

        The other ranks wait at the next step's all-reduce, so a metric must finish within dist_timeout_s.
        """
        path = self.save_checkpoint()
        if self.env.is_main and path is not None:
            grid = self.save_sample_grid()
            if self.tracker.cfg.artifacts:
                self.tracker.log_artifact(grid, "samples")
            step = self.tracker.step_for(self.progress.nimg)
            self.tracker.log_metrics(cost_metrics(self.cost, with_sacct=True), step=step)
            self._score(path, list(self.tcfg.metrics))

    def _score(self, path: Path, names: list[str]) -> None:
        """Measure ``names`` on the state saved in ``path`` (this trainer's current one): records, MLflow, best."""
        step = self.tracker.step_for(self.progress.nimg)
        for name, record in self.snapshot_metrics(names).items():
            write_record(self.run_dir, record, "snapshot", kimg=self.progress.kimg, checkpoint=path.name)
            if record["status"] != "ok":
                continue
            floor = {f"floor/{name}": record["floor"]} if record.get("floor") is not None else {}
            self.tracker.log_metrics({f"metrics/{name}": record["value"], **floor}, step=step)
            if name == self.tcfg.best_metric:
                checkpoint.update_best(self.run_dir, path, name, record["value"], self.progress.kimg)

    def score_finished_run(self) -> None:
        """A finished run started again with more ``training.metrics`` (they are not part of the run directory's
        hash, so another sweep's point with the same model lands here): measure the ones its last checkpoint
        lacks, so every point ends with the metrics its config asks for. Rank 0 only."""
        if not self.env.is_main or not self.tcfg.metrics:
            return
        latest = checkpoint.list_checkpoints(self.run_dir)
        if not latest:
            return
        path = latest[-1]
        done = {r["metric"] for r in read_records(self.run_dir) if r.get("source") == "snapshot"
                and r.get("checkpoint") == path.name and r.get("status") == "ok"}
        missing = [name for name in self.tcfg.metrics if name not in done]
        if missing:
            log.info("finished run: measuring %s on %s (asked for now, not measured before)", ", ".join(missing),
                     path.name)
            self._score(path, missing)

    def snapshot_metrics(self, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """``names`` (default ``training.metrics``) on G_ema against the training data, with the ``metrics``
        group's protocol."""
        names = list(self.tcfg.metrics) if names is None else names
        if not names:
            return {}
        mcfg = self.mcfg
        if mcfg is None:
            raise ValueError("training.metrics needs a metrics group (metrics=cpu or metrics=paper)")
        if not hasattr(self, "_detectors"):
            self._detectors = Detectors(mcfg, Path(self.cfg.paths.cache_dir))  # loads each detector once per run
        real = open_video_source(self.videos.path)  # the version this run trains on, whatever is published now
        fake = video_generator(self.G_ema, self.device, labels=self.videos.labels if self.num_classes else None)
        results = {}
        for name in names:
            t0 = time.monotonic()
            results[name] = {**run_metric(name, real, fake, mcfg, self._detectors, int(self.cfg.seed)),
                             "floor": self._floor(name, real, mcfg), "seconds": round(time.monotonic() - t0, 2)}
            log.info("kimg %.3f  %s = %s (floor %s, %.0f s)", self.progress.kimg, name, results[name].get("value"),
                     results[name]["floor"], results[name]["seconds"])
        return results

    def _floor(self, name: str, real: Any, mcfg: MetricsConfig) -> float | None:
        """An FVD metric's floor on this dataset (held-out real clips), measured once per job; None otherwise."""
        if not hasattr(self, "_floors"):
            self._floors: dict[str, float | None] = {}
        if name not in self._floors:
            fvd = get_metric(name).kind == "fvd"
            record = run_floor(name, real, mcfg, self._detectors, int(self.cfg.seed)) if fvd else {}
            self._floors[name] = record.get("value")
        return self._floors[name]

    def save_sample_grid(self) -> Path:
        """Rows are videos (fixed z; classes in turn for a conditional model), columns are frames t = 0, 2, 4, ..."""
        rows, cols = self.tcfg.sample_grid
        gen = torch.Generator().manual_seed(self.cfg.seed)
        z = torch.randn(rows, self.G_ema.z_dim, generator=gen).to(self.device)
        t = (torch.arange(cols, dtype=torch.float32) * 2)[None].expand(rows, -1).to(self.device)
        c = one_hot(torch.arange(rows) % max(self.num_classes, 1), self.num_classes)
        with torch.inference_mode():
            video = self.G_ema(z, t, None if c is None else c.to(self.device))  # [rows, cols, 3, H, W]
        img = to_rgb_uint8(video).cpu()
        H, W = img.shape[-2:]
        grid = img.permute(0, 3, 1, 4, 2).reshape(rows * H, cols * W, 3).numpy()  # [rows*H, cols*W, 3]
        path = self.run_dir / "samples" / f"samples-{self.progress.step:09d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: Image.fromarray(grid).save(f, format="PNG"))
        return path
