"""Typed model configs: every number of the StyleGAN-V appendix (B, D) and of the G3AN appendix as a default.

Enum fields make an unknown option fail at compose time with the list of valid values (OmegaConf checks
enum members by name); ranges are checked in ``__post_init__``, which runs when the composed node is
turned into the dataclass (:func:`to_model_config`), before any module is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf


class PeriodScheme(StrEnum):
    """How the initial wave periods of the positional embedding are spaced (appendix B.3, Figure 9)."""

    geometric = "geometric"  # official code: periods 2**linspace(log2 omega_min, log2 omega_max, N)
    linear = "linear"  # paper text, eq. 6: periods omega_min + (i/N)(omega_max - omega_min)
    exponential = "exponential"  # periods 2**(i+1), i = 1..N (Fourier-feature style)
    random = "random"  # angular frequencies sigma ~ N(0, xi), fixed at init


class MotionKind(StrEnum):
    """Where the motion codes u_t come from."""

    acyclic = "acyclic"  # ours: conv1d codes every d frames + acyclic positional embedding
    hierarchical = "hierarchical"  # appendix D: several acyclic code layers at different distances
    lstm = "lstm"  # MoCoGAN-style: LSTM over motion noise, codes interpolated between anchors
    lstm_ema = "lstm_ema"  # appendix D: LSTM with an exponential moving average over hidden states
    none = "none"  # plain image StyleGAN2 (no motion input at all); the benchmark baseline


class WaveCode(StrEnum):
    """Which motion code the wave parameters (periods, phases, amplitudes) are predicted from."""

    left = "left"  # official code: the left anchor's code u_l, constant between two anchors
    interpolated = "interpolated"  # paper text: the interpolated code u_t = lerp(u_l, u_r)


class TimeCond(StrEnum):
    """How D uses the time differences between the k sampled frames."""

    projection = "projection"  # ours: embedding + Fourier features of each delta -> mapping -> dot product
    predict = "predict"  # appendix D: classify each delta with an extra head instead of conditioning
    none = "none"  # no time information in D


class FusedModconv(StrEnum):
    """Grouped (fused) modulated convolution is faster on GPU and 1.2-1.4x slower on CPU (256², measured)."""

    auto = "auto"  # fused on CUDA at inference (as StyleGAN2-ADA), never on CPU
    always = "always"
    never = "never"


@dataclass
class MappingConfig:
    z_dim: int = 512  # content noise z (appendix B.1: 512)
    w_dim: int = 512  # intermediate latent w (512)
    num_layers: int = 2  # appendix B.1: 2 layers
    lr_multiplier: float = 0.01  # equalised-LR multiplier of the mapping network
    w_avg_beta: float = 0.995  # decay of the tracked mean w used for truncation

    def __post_init__(self) -> None:
        for key in ("z_dim", "w_dim", "num_layers"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.mapping.{key} must be >= 1, got {getattr(self, key)}")
        if not 0.0 < self.lr_multiplier <= 1.0:
            raise ValueError(f"model.mapping.lr_multiplier must be in (0, 1], got {self.lr_multiplier}")


@dataclass
class MotionConfig:
    kind: MotionKind = MotionKind.acyclic  # source of motion codes (ablation axis)
    noise_dim: int = 512  # motion noise z^m per code; also F_m's hidden width (appendix B.1: 512)
    code_dim: int = 512  # raw motion code u_t (512)
    embed_dim: int = 512  # positional embedding v_t fed to synthesis: embed_dim / 2 waves, as sin and cos
    kernel_size: int = 11  # motion mapping F_m conv1d kernel (appendix B.1: 11), stride 1, no padding
    num_layers: int = 2  # F_m conv1d layers (2) -> n anchors need n + num_layers*(kernel_size-1) noise codes
    lr_multiplier: float = 0.01  # equalised-LR multiplier of F_m's conv1d layers (official code)
    code_distance: int | None = None  # d: frames between neighbouring motion codes; None = omega_min (official)
    period_scheme: PeriodScheme = PeriodScheme.geometric  # official code; paper text: linear
    omega_min: float = 16.0  # shortest initial period in frames (official 16; paper text 2**3; SkyTimelapse 256)
    omega_max: float = 1024.0  # longest initial period in frames, 2**10
    amplitude_head: bool = False  # paper text: a learned amplitude per wave (off in the official code)
    wave_code: WaveCode = WaveCode.left  # official: wave parameters from u_l; paper text: from interpolated u_t
    random_xi: float = 1.0  # variance of N(0, xi) angular frequencies for period_scheme=random
    random_seed: int = 0  # the random scheme's frequencies are a buffer drawn from this seed
    hierarchical_distances: list[int] = field(default_factory=lambda: [16, 64, 256])  # kind=hierarchical
    lstm_ema_beta: float = 0.9  # EMA decay over LSTM hidden states (kind=lstm_ema)
    entropy_weight: float = 0.0  # >0: maximise entropy of wave parameters (appendix D); 0 = off
    progressive_frequencies: bool = False  # appendix D: open frequencies low -> high over training
    progressive_start: float = 0.25  # fraction of frequencies open at progress 0
    progressive_end: float = 0.5  # training progress at which all frequencies are open
    video_length_cond: bool = False  # appendix D: condition G on the video length (via the mapping)
    max_video_length: int = 1024  # length assumed when none is given; normalises the length input

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"model.motion.kernel_size must be odd and >= 1, got {self.kernel_size}")
        for key in ("noise_dim", "code_dim", "num_layers", "max_video_length"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.motion.{key} must be >= 1, got {getattr(self, key)}")
        if self.code_distance is not None and self.code_distance < 1:
            raise ValueError(f"model.motion.code_distance must be >= 1 or null, got {self.code_distance}")
        if self.embed_dim < 2 or self.embed_dim % 2:
            raise ValueError(f"model.motion.embed_dim must be even and >= 2, got {self.embed_dim}")
        if not 0.0 < self.lr_multiplier <= 1.0:
            raise ValueError(f"model.motion.lr_multiplier must be in (0, 1], got {self.lr_multiplier}")
        if not 0.0 < self.omega_min < self.omega_max:
            raise ValueError(
                f"model.motion.omega_min must be in (0, omega_max={self.omega_max}), got {self.omega_min}"
            )
        if self.code_distance is None and self.omega_min != round(self.omega_min):
            raise ValueError(f"model.motion.code_distance=null takes omega_min as the distance, which must then "
                             f"be a whole number of frames, got {self.omega_min}")
        if not self.hierarchical_distances or min(self.hierarchical_distances) < 1:
            raise ValueError(
                f"model.motion.hierarchical_distances must be non-empty and >= 1, got {self.hierarchical_distances}"
            )
        if not 0.0 <= self.lstm_ema_beta < 1.0:
            raise ValueError(f"model.motion.lstm_ema_beta must be in [0, 1), got {self.lstm_ema_beta}")
        if self.entropy_weight < 0.0:
            raise ValueError(f"model.motion.entropy_weight must be >= 0, got {self.entropy_weight}")
        if not 0.0 < self.progressive_start <= 1.0:
            raise ValueError(f"model.motion.progressive_start must be in (0, 1], got {self.progressive_start}")
        if not 0.0 < self.progressive_end <= 1.0:
            raise ValueError(f"model.motion.progressive_end must be in (0, 1], got {self.progressive_end}")
        if self.random_xi <= 0.0:
            raise ValueError(f"model.motion.random_xi must be > 0, got {self.random_xi}")

    @property
    def distance(self) -> int:
        """Frames between neighbouring motion codes: code_distance, or omega_min when it is null (official)."""
        return self.code_distance if self.code_distance is not None else int(round(self.omega_min))


@dataclass
class SynthesisConfig:
    channel_base: int = 16384  # fmaps 0.5: channels at resolution r = min(channel_base // r, channel_max)
    channel_max: int = 512
    conv_clamp: float | None = 256.0  # clamp conv outputs to +-256 (None = off)
    num_fp16_res: int = 4  # top resolutions run in fp16, only on CUDA
    fused_modconv: FusedModconv = FusedModconv.auto
    concat_coords: bool = False  # appendix D: concatenate (x, y) coordinates to every block's input

    def __post_init__(self) -> None:
        if self.channel_base < 1 or self.channel_max < 1:
            raise ValueError(
                f"model.synthesis.channel_base/channel_max must be >= 1, got {self.channel_base}/{self.channel_max}"
            )
        if self.num_fp16_res < 0:
            raise ValueError(f"model.synthesis.num_fp16_res must be >= 0, got {self.num_fp16_res}")
        if self.conv_clamp is not None and self.conv_clamp <= 0:
            raise ValueError(f"model.synthesis.conv_clamp must be > 0 or null, got {self.conv_clamp}")


@dataclass
class DiscriminatorConfig:
    channel_base: int = 16384  # fmaps 0.5, as in G
    channel_max: int = 512
    conv_clamp: float | None = 256.0
    num_fp16_res: int = 4
    concat_res: int = 16  # the k frame feature maps are concatenated along channels at this resolution
    num_frames_div_factor: int = 2  # the block entering concat_res emits channels / this per frame (official: 2)
    mbstd_group_size: int = 4  # minibatch-std group (largest divisor of the batch not above it)
    mbstd_num_channels: int = 1
    time_cond: TimeCond = TimeCond.projection
    cmap_dim: int | None = None  # projection dimension of the conditioning; None = channels at 4x4 (official)
    max_num_frames: int = 1024  # time differences below this get a learned embedding (official dataset.max_num_frames)
    time_embed_dim: int = 256  # size of the learned embedding of a rounded time difference (official: 256)
    mapping_layers: int = 2  # conditioning mapping: embedding, normalise, this many FC layers at lr x 0.01
    feature_diffs: bool = False  # appendix D: concat differences of neighbouring frames' features at concat_res
    max_time_diff: int = 64  # time_cond=predict: time differences are classified into 0 .. max_time_diff
    time_pred_weight: float = 1.0  # weight of the delta-classification loss when time_cond=predict

    def __post_init__(self) -> None:
        if self.concat_res < 4 or self.concat_res & (self.concat_res - 1):
            raise ValueError(f"model.discriminator.concat_res must be a power of two >= 4, got {self.concat_res}")
        for key in ("channel_base", "channel_max", "mbstd_group_size", "num_frames_div_factor", "max_num_frames",
                    "time_embed_dim", "mapping_layers", "max_time_diff"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.discriminator.{key} must be >= 1, got {getattr(self, key)}")
        if self.cmap_dim is not None and self.cmap_dim < 1:
            raise ValueError(f"model.discriminator.cmap_dim must be >= 1 or null, got {self.cmap_dim}")
        if self.mbstd_num_channels < 0:
            raise ValueError(f"model.discriminator.mbstd_num_channels must be >= 0, got {self.mbstd_num_channels}")


@dataclass
class MoCoGANConfig:
    """MoCoGAN+SG2 only (name=mocogan_sg2): what the StyleGAN-V authors' mocogan config adds to the StyleGAN2
    backbone (configs/model/mocogan.yaml, src/training/mocogan.py). The LSTM is motion.noise_dim -> code_dim wide,
    v_t has motion.embed_dim channels; these fields are ignored by every other model."""

    motion_mapping_layers: int = 2  # FC layers mapping the LSTM code u_t to v_t (official MotionMappingNetwork: 2)
    motion_mapping_lr_multiplier: float = 0.01  # equalised-LR multiplier of those layers (official: 0.01)
    video_d_lr_multiplier: float = 0.1  # the 3-D video D's Adam lr / the image D's (video_discr_lr_multiplier)
    video_d_channels: int = 64  # ndf: channels of the first 3-D conv, x2 per layer up to 8 ndf (official 64)
    video_d_noise_sigma: float = 0.1  # std of the Gaussian noise added before every 3-D conv; 0 = off (0.1)
    video_d_time_paddings: int = 0  # 3-D convs that pad time (video_discr_num_t_paddings: 0, so k >= 16 frames)

    def __post_init__(self) -> None:
        for key in ("motion_mapping_layers", "video_d_channels"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.mocogan.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("motion_mapping_lr_multiplier", "video_d_lr_multiplier"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise ValueError(f"model.mocogan.{key} must be in (0, 1], got {getattr(self, key)}")
        if self.video_d_noise_sigma < 0.0:
            raise ValueError(f"model.mocogan.video_d_noise_sigma must be >= 0, got {self.video_d_noise_sigma}")
        if self.video_d_time_paddings < 0:
            raise ValueError(f"model.mocogan.video_d_time_paddings must be >= 0, got {self.video_d_time_paddings}")


@dataclass
class StyleGANVConfig:
    """StyleGAN-V and its ablations; also MoCoGAN+SG2 (motion.kind=lstm) and image StyleGAN2 (kind=none)."""

    name: str = "stylegan_v"  # registry key (stylegan_v | mocogan_sg2 | g3an)
    resolution: int = 256  # default output size; build_models() takes the dataset's resolution
    num_frames: int = 3  # k: frames per video seen by D (appendix: 3)
    c_dim: int = 0  # class-conditioning size (0 = unconditional); training sets it from the dataset's labels
    img_channels: int = 3  # colour channels of a frame; training sets it from the dataset (1 = grayscale)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    mocogan: MoCoGANConfig = field(default_factory=MoCoGANConfig)  # used only when name=mocogan_sg2

    def __post_init__(self) -> None:
        check_resolution(self.resolution, "model.resolution")
        if self.num_frames < 1:
            raise ValueError(f"model.num_frames must be >= 1, got {self.num_frames}")
        if self.c_dim < 0:
            raise ValueError(f"model.c_dim must be >= 0, got {self.c_dim}")
        if self.img_channels not in (1, 3):
            raise ValueError(f"model.img_channels must be 1 (grayscale) or 3 (RGB), got {self.img_channels}")


class G3ANVariant(StrEnum):
    """Which G3AN generator is built."""

    code = "code"  # its public code (wyhsirius/g3an-project, model/), which produced the G3AN numbers compared with
    appendix = "appendix"  # its appendix read as written: Table 1's sizes, outer-product fusion, 3x3x3 to_rgb


class G3ANVideoConv(StrEnum):
    """How the public code's video stream G_V up-samples in each G^3 module (its ``g_mode``)."""

    temporal_spatial = "temporal_spatial"  # "1p2d" (its default): a k_t x 1 x 1 then a 1 x k_s x k_s transposed conv
    spatial_temporal = "spatial_temporal"  # "2p1d": the spatial one first
    joint = "joint"  # "3d": one k_t x k_s x k_s transposed conv


@dataclass
class G3ANConfig:
    """G3AN (second source document and its public code): three-stream generator and two-stream (image + video) D.

    The default generator is the public code's: the G3AN numbers in the StyleGAN-V paper come from running
    the G3AN authors' public code, so that is what reproduces them; ``g3an_variant=appendix`` is the
    appendix's reading, kept as a named option.
    """

    name: str = "g3an"
    g3an_variant: G3ANVariant = G3ANVariant.code
    resolution: int = 64  # Table 1: 64 x 64
    num_frames: int = 16  # Table 1: 16 frames
    za_dim: int = 128  # appearance noise z_a
    zm_dim: int = 10  # motion noise z_m
    num_classes: int = 0  # one-hot motion categories (0 = unconditional)
    img_channels: int = 3  # colour channels of a frame; training sets it from the dataset (1 = grayscale)
    # Channels of the first G^3 module, halved after the second (code: 512 = 8 x its ch 64, then 512, 256, 128,
    # 64) or after every module (appendix Table 1: 1024 ... 64); None = the variant's own.
    base_channels: int | None = None
    # F-SA (T-SA then S-SA) after G^3 module attention_after (index 0..4; 3, at 16 x 32 x 32, as the public code
    # places it). The public Generator class builds it (and its released checkpoint has it); its train.py only
    # does with --use_attention, which defaults to off: attention=false is that run.
    attention: bool = True
    attention_after: int = 3
    attention_reduction: int = 8  # C' = C / 8 for f and g (query and key)
    video_conv: G3ANVideoConv = G3ANVideoConv.temporal_spatial  # code variant only: the public g_mode
    d_channels: int = 64  # first-layer channels of both discriminator streams (the public ch_d 64)

    def __post_init__(self) -> None:
        if self.resolution != 64:
            raise ValueError(f"model.resolution must be 64 for g3an (Table 1), got {self.resolution}")
        if self.num_frames < 1:
            raise ValueError(f"model.num_frames must be >= 1, got {self.num_frames}")
        for key in ("za_dim", "zm_dim", "attention_reduction", "d_channels"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.base_channels is not None and self.base_channels < 1:
            raise ValueError(f"model.base_channels must be >= 1 or null, got {self.base_channels}")
        if self.g3an_variant == G3ANVariant.code and self.channels % 8:
            raise ValueError(f"model.base_channels must be a multiple of 8 for g3an_variant=code (8 x the public "
                             f"code's ch, whose last module has ch channels per stream), got {self.channels}")
        if self.num_classes < 0:
            raise ValueError(f"model.num_classes must be >= 0, got {self.num_classes}")
        if self.img_channels not in (1, 3):
            raise ValueError(f"model.img_channels must be 1 (grayscale) or 3 (RGB), got {self.img_channels}")
        if not 0 <= self.attention_after <= 4:
            raise ValueError(f"model.attention_after must be in [0, 4], got {self.attention_after}")

    @property
    def z_dim(self) -> int:
        return self.za_dim + self.zm_dim

    @property
    def channels(self) -> int:
        """Channels of the first G^3 module (base_channels, or the variant's own)."""
        if self.base_channels is not None:
            return self.base_channels
        if self.g3an_variant == G3ANVariant.code:
            return 512
        elif self.g3an_variant == G3ANVariant.appendix:
            return 1024
        else:
            raise ValueError(f"unknown model.g3an_variant {self.g3an_variant!r}; valid: code, appendix")


def check_resolution(resolution: int, key: str) -> None:
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"{key} must be a power of two >= 4, got {resolution}")


ModelConfig = StyleGANVConfig | G3ANConfig


def to_model_config(cfg_model: Any) -> ModelConfig:
    """Turn a composed ``cfg.model`` node (or a dataclass) into the validated dataclass."""
    if isinstance(cfg_model, (StyleGANVConfig, G3ANConfig)):
        return cfg_model
    if isinstance(cfg_model, DictConfig):
        obj = OmegaConf.to_object(cfg_model)  # runs __post_init__ on every level
        if isinstance(obj, (StyleGANVConfig, G3ANConfig)):
            return obj
        cfg_model = obj
    if isinstance(cfg_model, dict):
        name = cfg_model.get("name", "stylegan_v")
        if name == "g3an" and "g3an_variant" not in cfg_model:  # saved before the public-code G: the appendix's
            cfg_model = {**cfg_model, "g3an_variant": G3ANVariant.appendix.value}
        schema = G3ANConfig if name == "g3an" else StyleGANVConfig
        merged = OmegaConf.merge(OmegaConf.structured(schema), cfg_model)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    raise TypeError(f"cannot read a model config from {type(cfg_model).__name__}")


def register(cs: ConfigStore) -> None:
    """Store the ``model`` group schemas; YAML options start with ``defaults: [base_<schema>, _self_]``."""
    cs.store(group="model", name="base_stylegan_v", node=StyleGANVConfig)
    cs.store(group="model", name="base_g3an", node=G3ANConfig)
