"""Official StyleGAN-V snapshots (``network-snapshot-*.pkl``) as our modules, without running anything from them.

An official snapshot is a plain pickle of live modules: most are wrapped by a persistence mechanism that stores
each class's source code in the file and rebuilds the object by executing it. Here a restricted unpickler
turns every object into an inert :class:`Record` (its class name, constructor arguments and state) and builds
only data: tensors (through torch's weights-only loader), containers and numbers. The embedded source is never
run. The hyper-parameters come from the records' constructor arguments (OmegaConf configs, read as plain
data), the weights from their parameter and buffer dictionaries, renamed into our layout.

    snapshot = load_official_snapshot("network-snapshot-025000.pkl")
    snapshot["G_ema"](z, t)  # our Generator, eval mode
"""

from __future__ import annotations

import io
import math
import pickle
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stylegan_v.models.config import (
    DiscriminatorConfig,
    MappingConfig,
    MotionConfig,
    PeriodScheme,
    StyleGANVConfig,
    SynthesisConfig,
)
from stylegan_v.models.registry import build_models

PERSISTENT_OBJ = ("torch_utils.persistence", "_reconstruct_persistent_obj")  # any prefix before torch_utils


class OfficialSnapshotError(ValueError):
    """The file is not an official StyleGAN-V snapshot this reader understands; the message says why."""


@dataclass
class Record:
    """An object from the pickle, kept as data: what class it was, what it was built from, what it held."""

    qualname: str  # "module.Class" of the original object
    args: tuple = ()  # constructor / reduce arguments
    state: Any = None  # what pickle's BUILD set (a module's __dict__)
    items: dict = field(default_factory=dict)  # SETITEMS on a dict-like object
    elements: list = field(default_factory=list)  # APPENDS on a list-like object

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.elements.append(value)

    def extend(self, values: Any) -> None:
        self.elements.extend(values)

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]


def _record_class(qualname: str) -> type:
    """A stand-in class for ``qualname``: calling or instantiating it only records the arguments."""

    class Stand(Record):
        def __new__(cls, *args: Any, **kwargs: Any) -> Record:
            obj = object.__new__(cls)
            Record.__init__(obj, qualname, args)
            return obj

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

    Stand.__qualname__ = Stand.__name__ = f"Record[{qualname}]"
    return Stand


def _persistent_record(meta: Any) -> Record:
    """The official persistence hook, made inert: keep class name and state, never the embedded source."""
    if not isinstance(meta, dict) or "class_name" not in meta or "state" not in meta:
        raise OfficialSnapshotError("a persistent object without class_name/state: not an official snapshot")
    return Record(str(meta["class_name"]), state=meta["state"])


def _storage_from_bytes(data: bytes) -> Any:
    """Tensor storages are nested torch.save payloads: read them with torch's weights-only loader."""
    return torch.load(io.BytesIO(data), weights_only=True)


_DATA = {  # classes and functions that only build data
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "dict"): dict, ("builtins", "list"): list, ("builtins", "tuple"): tuple,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "int"): int,
    ("builtins", "float"): float, ("builtins", "str"): str, ("builtins", "bool"): bool,
    ("builtins", "bytes"): bytes, ("builtins", "complex"): complex,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
}


class _InertUnpickler(pickle.Unpickler):
    """Builds data and :class:`Record` stand-ins; no class or function from the file is ever imported."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _DATA:
            return _DATA[(module, name)]
        if name == PERSISTENT_OBJ[1] and module.endswith(PERSISTENT_OBJ[0]):
            return _persistent_record
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") and name in ("dtype", "scalar"):
            return super().find_class(module, name)  # numpy scalars: plain numbers
        return _record_class(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise OfficialSnapshotError("the pickle refers to external objects (persistent ids): not an official snapshot")


def read_snapshot(path: str | Path) -> dict[str, Any]:
    """The top-level dict of an official snapshot with every object as data (see module docstring)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = _InertUnpickler(f).load()
    except OfficialSnapshotError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError) as err:
        raise OfficialSnapshotError(f"{path} is not an official StyleGAN-V snapshot (unreadable pickle: {err})") from err
    if not isinstance(data, dict) or not {"G", "D", "G_ema"} <= set(data):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise OfficialSnapshotError(f"{path} is not an official StyleGAN-V snapshot: expected a dict with G, D, "
                                    f"G_ema (a network-snapshot-*.pkl of the official training loop), got {keys}")
    for key in ("G", "D", "G_ema"):
        if not isinstance(data[key], Record) or not isinstance(data[key].state, dict):
            raise OfficialSnapshotError(f"{path}: {key} is not a pickled module")
    return data


# ------------------------------------------------------------------------------------------------ plain data


def plain(value: Any) -> Any:
    """OmegaConf containers and other records -> plain dicts/lists/scalars (reads their stored content only)."""
    if isinstance(value, Record):
        state = value.state[0] if isinstance(value.state, tuple) and value.state else value.state
        state = state if isinstance(state, dict) else {}
        if value.name == "DictConfig":
            content = state.get("_content")
            return None if content is None else {k: plain(v) for k, v in content.items()}
        if value.name == "ListConfig":
            content = state.get("_content")
            return None if content is None else [plain(v) for v in content]
        if value.name.endswith("Node"):  # AnyNode, IntegerNode, StringNode, ...
            return plain(state.get("_val"))
        if value.items:
            return {k: plain(v) for k, v in value.items.items()}
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):  # numpy scalar
        return value.item()
    return value


def module_state_dict(record: Record, prefix: str = "") -> dict[str, torch.Tensor]:
    """A pickled module's parameters and persistent buffers, flattened like ``nn.Module.state_dict()``."""
    state = record.state if isinstance(record.state, dict) else {}
    out: dict[str, torch.Tensor] = {}
    for key, value in (state.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + key] = torch.as_tensor(value).detach()
    skip = state.get("_non_persistent_buffers_set") or set()
    for key, value in (state.get("_buffers") or {}).items():
        if value is not None and key not in skip:
            out[prefix + key] = torch.as_tensor(value).detach()
    for key, child in (state.get("_modules") or {}).items():
        if isinstance(child, Record):
            out.update(module_state_dict(child, f"{prefix}{key}."))
    return out


def _init_kwargs(record: Record) -> dict[str, Any]:
    kwargs = record.state.get("_init_kwargs")
    if kwargs is None:
        raise OfficialSnapshotError(f"{record.name} has no constructor arguments (_init_kwargs): not an official "
                                    "persistent module")
    return plain(kwargs)


# ------------------------------------------------------------------------------------------------ config


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise OfficialSnapshotError(message)


def official_config(G: Record, D: Record) -> StyleGANVConfig:
    """Our model config from the constructor arguments of the official G and D."""
    gk, dk = _init_kwargs(G), _init_kwargs(D)
    g, d = gk.get("cfg") or {}, dk.get("cfg") or {}
    motion, time_enc, sampling = g.get("motion") or {}, g.get("time_enc") or {}, g.get("sampling") or {}
    _require(not g.get("use_noise", False), "the snapshot's G uses per-pixel noise (use_noise), which StyleGAN-V "
             "and this implementation do not have")
    _require((g.get("input") or {}).get("type") == "temporal" and time_enc.get("cond_type") == "concat_const",
             "only StyleGAN-V snapshots are supported (G input 'temporal', time_enc.cond_type 'concat_const'); "
             f"got input {g.get('input')}, cond_type {time_enc.get('cond_type')}")
    _require(motion.get("gen_strategy") == "conv" and motion.get("fourier", False),
             f"only conv motion codes with the acyclic embedding are supported, got gen_strategy "
             f"{motion.get('gen_strategy')!r}, fourier {motion.get('fourier')!r}")
    _require(not d.get("dummy_c", False), "the snapshot's D zeroes its conditioning (dummy_c): not supported")
    _require(motion.get("v_dim") == motion.get("z_dim"),
             f"motion v_dim {motion.get('v_dim')} != z_dim {motion.get('z_dim')} is not supported")
    syn, mapping = gk.get("synthesis_kwargs") or {}, gk.get("mapping_kwargs") or {}
    num_frames = int(sampling.get("num_frames_per_video", (d.get("sampling") or {}).get("num_frames_per_video", 3)))
    d_sampling = d.get("sampling") or sampling
    return StyleGANVConfig(
        name="stylegan_v",
        resolution=int(gk["img_resolution"]),
        num_frames=num_frames,
        c_dim=int(gk.get("c_dim", 0)),
        img_channels=int(gk.get("img_channels", 3)),
        mapping=MappingConfig(z_dim=int(g.get("z_dim", 512)), w_dim=int(gk.get("w_dim", g.get("w_dim", 512))),
                              num_layers=int(mapping.get("num_layers", 8))),
        motion=MotionConfig(
            noise_dim=int(motion["z_dim"]), code_dim=int(motion["v_dim"]), embed_dim=2 * int(time_enc["dim"]),
            kernel_size=int(motion.get("kernel_size", 11)), code_distance=int(motion["motion_z_distance"]),
            period_scheme=PeriodScheme.geometric, omega_min=float(time_enc["min_period_len"]),
            omega_max=float(time_enc["max_period_len"])),
        synthesis=SynthesisConfig(channel_base=int(syn.get("channel_base", 32768)),
                                  channel_max=int(syn.get("channel_max", 512)),
                                  conv_clamp=syn.get("conv_clamp"), num_fp16_res=int(syn.get("num_fp16_res", 0))),
        discriminator=DiscriminatorConfig(
            channel_base=int(dk.get("channel_base", 32768)), channel_max=int(dk.get("channel_max", 512)),
            conv_clamp=dk.get("conv_clamp"), num_fp16_res=int(dk.get("num_fp16_res", 0)),
            concat_res=int(d.get("concat_res", 16)), num_frames_div_factor=int(d.get("num_frames_div_factor", 1)),
            mbstd_group_size=int((dk.get("epilogue_kwargs") or {}).get("mbstd_group_size", 4)),
            cmap_dim=dk.get("cmap_dim"), max_num_frames=int(d_sampling.get("max_num_frames", 1024)),
            mapping_layers=int((dk.get("mapping_kwargs") or {}).get("num_layers", 8))),
    )


# ------------------------------------------------------------------------------------------------ weights

Rename = tuple[str, str]
_GENERATOR_RULES: list[Rename] = [
    (r"mapping\.fc(\d+)\.", r"mapping.layers.\1."),
    (r"mapping\.embed\.", "mapping.embed_c."),
    (r"synthesis\.motion_encoder\.conv\.(\d+)\.", r"motion.layers.0.mapping.convs.\1."),
    (r"synthesis\.motion_encoder\.time_encoder\.periods_predictor\.", "motion.to_periods."),
    (r"synthesis\.motion_encoder\.time_encoder\.phase_predictor\.", "motion.to_phases."),
    (r"synthesis\.motion_encoder\.time_encoder\.aligners_predictor\.", "motion.layers.0.aligner."),
    (r"synthesis\.motion_encoder\.time_encoder\.(freqs|phase_scales)$", r"motion.\1"),
    (r"synthesis\.b(\d+)\.input\.input\.const$", r"synthesis.b\1.const"),
]
_DISCRIMINATOR_RULES: list[Rename] = [
    (r"b4\.conv\.", "epilogue_conv."),
    (r"b4\.(fc|out)\.", r"\1."),
    (r"mapping\.fc(\d+)\.", r"mapping.layers.\1."),
    (r"time_encoder\.const_embed\.", "time_encoder.embed."),
    (r"time_encoder\.time_encoder\.fourier_coefs$", "time_encoder.freqs"),
]


def _rename(key: str, rules: list[Rename]) -> str:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def _generator_key(key: str, resolutions: list[int]) -> str:
    key = _rename(key, _GENERATOR_RULES)
    block = re.match(r"synthesis\.b(\d+)\.(.*)$", key)
    if block:
        key = f"synthesis.blocks.{resolutions.index(int(block.group(1)))}.{block.group(2)}"
    return key


def _discriminator_key(key: str, D: nn.Module) -> str:
    key = _rename(key, _DISCRIMINATOR_RULES)
    block = re.match(r"b(\d+)\.(.*)$", key)
    if block:
        res, rest = int(block.group(1)), block.group(2)
        if rest.startswith("fromrgb."):
            return rest
        top = int(math.log2(D.resolution))
        j = top - int(math.log2(res))  # blocks run from the input resolution down
        n_frame = len(D.frame_blocks)
        return f"frame_blocks.{j}.{rest}" if j < n_frame else f"video_blocks.{j - n_frame}.{rest}"
    return key


def _fit(official: dict[str, torch.Tensor], ours: nn.Module, rename: Callable[[str], str], what: str) -> None:
    """Copy official parameters into ``ours`` by renamed key; buffers we compute from the config must agree."""
    params = dict(ours.named_parameters())
    buffers = dict(ours.named_buffers())
    loaded: set[str] = set()
    for key, value in official.items():
        if key.endswith("resample_filter"):
            continue  # the fixed [1, 3, 3, 1] low-pass filter
        name = rename(key)
        dest = params.get(name, buffers.get(name))
        _require(dest is not None, f"{what}: no place for official tensor {key!r} (as {name!r}) in our model")
        _require(value.numel() == dest.numel(), f"{what}: {key} has shape {list(value.shape)}, ours {list(dest.shape)}")
        value = value.reshape(dest.shape).to(dest.dtype)
        if name in params or name.endswith("w_avg"):  # learned, or tracked during training
            with torch.no_grad():
                dest.copy_(value)
            loaded.add(name)
        else:
            _require(torch.allclose(dest, value, rtol=1e-5, atol=1e-7),
                     f"{what}: official {key} differs from ours: the converted config does not match the snapshot")
    missing = sorted(set(params) - loaded)
    _require(not missing, f"{what}: the snapshot has no value for {missing[:5]}{' ...' if len(missing) > 5 else ''}")


def load_official_snapshot(path: str | Path) -> dict[str, Any]:
    """``{"G", "D", "G_ema"}`` as our modules (eval mode, CPU), ``"config"`` (our StyleGANVConfig), and what the
    snapshot says of its data: ``"training_set_kwargs"`` and ``"fps"`` (None when absent)."""
    data = read_snapshot(path)
    cfg = official_config(data["G"], data["D"])
    out: dict[str, Any] = {"config": cfg}
    for name in ("G", "G_ema", "D"):
        torch.manual_seed(0)
        G, D = build_models(cfg, cfg.resolution, cfg.num_frames)
        official = module_state_dict(data[name])
        if name == "D":
            _fit(official, D, lambda k: _discriminator_key(k, D), f"{path}: D")
            out[name] = D.eval().requires_grad_(False)
        else:
            resolutions = [b.resolution for b in G.synthesis.blocks]
            _fit(official, G, lambda k: _generator_key(k, resolutions), f"{path}: {name}")
            out[name] = G.eval().requires_grad_(False)
    out["training_set_kwargs"] = plain(data.get("training_set_kwargs") or {})
    out["fps"] = ((_init_kwargs(data["G"]).get("cfg") or {}).get("sampling") or {}).get("fps")  # the data's
    return out
