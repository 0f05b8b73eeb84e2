"""Typed ``training`` config: the official StyleGAN-V recipe as defaults.

One kimg is **a thousand frames shown to D** (a step of B videos of k frames counts B x k), as in the official
code, so ``total_kimg``, ticks, snapshots and the EMA ramp-up compare with the paper's training lengths. The EMA
half-life and ADA's speed count videos, as there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from stylegan_v.checks import section

AUGMENT_MODES = ("ada", "fixed", "off")
RECIPES = ("stylegan_v", "g3an")  # the loss and optimiser scheme; g3an: two Ds with their own losses (model=g3an)
DEVICES = ("auto", "cpu", "cuda")


_check = section("training")


@dataclass
class AugmentConfig:
    mode: str = "ada"  # "ada": adapt p towards `target`; "fixed": keep p; "off": no augmentation
    p: float = 0.0  # initial (or fixed) probability of each transform
    target: float = 0.6  # ADA target for E[sign(D(real))], over the real logits of the D and the R1 phases
    interval: int = 4  # adjust p every this many steps
    # p can go from 0 to 1 in this many thousand videos. 100 is what the paper's runs had: the official launcher
    # starts a run with `resume: ~`, which its train.py treats as a transfer-learning resume and so sets ADA's
    # speed to 100 kimg (and turns the EMA ramp-up off); 500 is its and StyleGAN2-ADA's default otherwise
    # (training=paper_ada_defaults).
    speed_kimg: float = 100.0
    video_consistent: bool = True  # one transform per video (paper); False = per frame (ablation)

    def __post_init__(self) -> None:
        _check(self.mode in AUGMENT_MODES, "augment.mode", f"must be one of {AUGMENT_MODES}", self.mode)
        _check(0.0 <= self.p <= 1.0, "augment.p", "must be in [0, 1]", self.p)
        _check(0.0 < self.target < 1.0, "augment.target", "must be in (0, 1)", self.target)
        _check(self.interval >= 1, "augment.interval", "must be >= 1", self.interval)
        _check(self.speed_kimg > 0, "augment.speed_kimg", "must be > 0", self.speed_kimg)


@dataclass
class TrainingConfig:
    recipe: str = "stylegan_v"  # "stylegan_v": logistic loss, lazy R1, ADA, EMA; "g3an": G3AN's (see g3an.yaml)
    batch_size: int = 64  # videos per optimiser step, summed over all ranks
    batch_per_rank: int | None = None  # videos per forward on one rank (gradient accumulation); None = all
    total_kimg: float = 25000.0  # training length in thousands of frames shown to D
    max_steps: int | None = None  # stop after this many steps whatever total_kimg says (tests, smoke runs)
    kimg_per_tick: float = 5.0  # log progress every this many thousand frames
    snapshot_ticks: int = 200  # checkpoint, samples and metrics every this many ticks
    keep_checkpoints: int = 3  # newest checkpoints kept (plus the best by `best_metric`)
    lr_g: float | None = None  # Adam learning rate of G before the lazy-regularisation scaling; None = 0.0025,
    lr_d: float | None = None  # or 0.002 from 1024² (StyleGAN2-ADA's "auto"); same for D
    betas: list[float] = field(default_factory=lambda: [0.0, 0.99])  # Adam betas before the scaling
    eps: float = 1e-8  # Adam epsilon
    g_reg_interval: int = 4  # G's lazy-regularisation interval: lr x 4/5, betas ** (4/5), as the official code,
    #                          although G has no regulariser (path length weight 0)
    r1_gamma: float | None = None  # R1 weight; None = 0.0002 * resolution² / batch_size (0.2048 at 256², batch 64)
    r1_interval: int = 16  # lazy R1: every this many D steps; lr and betas of D are scaled to match
    ema_kimg: float = 10.0  # EMA half-life of G_ema in thousands of videos at batch 32, scaled by batch_size / 32;
    #                         0 = no EMA (G_ema is a copy of G)
    # Half-life at most this fraction of the frames seen so far; None = off. Off is what the paper's runs had
    # (the official launcher's `resume: ~` is taken for a resume, which turns the ramp-up off); 0.05 is the
    # official default otherwise (training=paper_ada_defaults).
    ema_rampup: float | None = None
    mirror: bool = True  # flip each real clip left-right with probability 1/2 (official x-flip mirroring)
    cond: bool = False  # train on the dataset's class labels: c into G's mapping and motion codes and into D
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    metrics: list[str] = field(default_factory=list)  # computed at every snapshot (metric registry names)
    best_metric: str | None = None  # keep the checkpoint with the lowest value of this metric
    init_from: str | None = None  # start from these weights (ours, or an official snapshot after convert_official)
    allow_restart: bool = False  # when every checkpoint of the run is damaged: start again from step 0 (else refuse)
    allow_data_change: bool = False  # resume on a dataset whose content hash differs from the checkpoint's (else refuse)
    num_workers: int = 2  # data-loading processes per rank
    device: str = "auto"  # "auto" = CUDA if present, else CPU
    mixed_precision: bool = True  # fp16 on the top resolutions, only on CUDA (always fp32 on CPU)
    dist_timeout_s: float = 600.0  # every collective gives up after this (a dead peer ends the job)
    sample_grid: list[int] = field(default_factory=lambda: [4, 4])  # videos per snapshot grid (rows, cols)

    def learning_rate(self, lr: float | None, resolution: int) -> float:
        """The configured rate, or StyleGAN2-ADA's "auto" one for this resolution."""
        return lr if lr is not None else (0.002 if resolution >= 1024 else 0.0025)

    def gamma(self, resolution: int) -> float:
        """R1 weight: the configured one, or StyleGAN2-ADA's heuristic 0.0002 * res² / batch."""
        return self.r1_gamma if self.r1_gamma is not None else 0.0002 * resolution**2 / self.batch_size

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)
        _check(self.batch_per_rank is None or self.batch_per_rank >= 1, "batch_per_rank", "must be >= 1 or null",
               self.batch_per_rank)
        _check(self.total_kimg > 0, "total_kimg", "must be > 0", self.total_kimg)
        _check(self.max_steps is None or self.max_steps >= 1, "max_steps", "must be >= 1 or null", self.max_steps)
        _check(self.kimg_per_tick > 0, "kimg_per_tick", "must be > 0", self.kimg_per_tick)
        _check(self.snapshot_ticks >= 1, "snapshot_ticks", "must be >= 1", self.snapshot_ticks)
        _check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1", self.keep_checkpoints)
        _check(self.recipe in RECIPES, "recipe", f"must be one of {RECIPES}", self.recipe)
        _check(self.eps > 0, "eps", "must be > 0", self.eps)
        _check(self.ema_kimg >= 0, "ema_kimg", "must be >= 0 (0 = no EMA)", self.ema_kimg)
        _check(self.recipe != "g3an" or self.augment.mode == "off", "augment.mode",
               "must be off with recipe g3an (G3AN trains without augmentation)", self.augment.mode)
        for key in ("lr_g", "lr_d"):
            _check(getattr(self, key) is None or getattr(self, key) > 0, key, "must be > 0 or null",
                   getattr(self, key))
        _check(self.g_reg_interval >= 1, "g_reg_interval", "must be >= 1", self.g_reg_interval)
        _check(len(self.betas) == 2 and all(0.0 <= b < 1.0 for b in self.betas), "betas",
               "must be two numbers in [0, 1)", list(self.betas))
        _check(self.r1_gamma is None or self.r1_gamma >= 0, "r1_gamma", "must be >= 0 or null", self.r1_gamma)
        _check(self.r1_interval >= 1, "r1_interval", "must be >= 1", self.r1_interval)
        _check(self.ema_rampup is None or self.ema_rampup > 0, "ema_rampup", "must be > 0 or null", self.ema_rampup)
        _check(self.num_workers >= 0, "num_workers", "must be >= 0", self.num_workers)
        _check(self.device in DEVICES, "device", f"must be one of {DEVICES}", self.device)
        _check(self.dist_timeout_s > 0, "dist_timeout_s", "must be > 0", self.dist_timeout_s)
        _check(len(self.sample_grid) == 2 and min(self.sample_grid) >= 1, "sample_grid",
               "must be [rows, cols] >= 1", list(self.sample_grid))
        _check(self.best_metric is None or self.best_metric in self.metrics, "best_metric",
               f"must be null or one of training.metrics {list(self.metrics)}", self.best_metric)


def register(cs: ConfigStore) -> None:
    cs.store(group="training", name="base_training", node=TrainingConfig)
