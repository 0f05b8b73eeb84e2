"""Write pickles in the official StyleGAN-V snapshot format, for testing the loader without the official code.

The official training loop pickles a dict ``{training_set_kwargs, G, D, G_ema, augment_pipe}`` of live modules.
Each persistent module pickles as a call ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
``meta = {type, version, module_src, class_name, state}``: ``state`` is the module's ``__dict__`` (parameter,
buffer and sub-module dicts, the constructor arguments in ``_init_kwargs`` with OmegaConf configs), and
``module_src`` the source code the official code would execute to rebuild the class. This module recreates
that layout from a flat state_dict and the constructor arguments, with a ``module_src`` of our choosing.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

PERSISTENCE_MODULE = "src.torch_utils.persistence"
BUFFERS = ("freqs", "phase_scales", "w_avg", "fourier_coefs", "resample_filter")  # the rest are parameters


def _reconstruct_persistent_obj(meta: dict) -> Any:  # stands for the official function; never called here
    raise AssertionError("a test pickle must be read by the loader under test, not by pickle.load")


@contextmanager
def _official_name() -> Iterator[None]:
    """pickle writes a function by module and name: make the official name resolvable while dumping only."""
    parts = PERSISTENCE_MODULE.split(".")
    names = [".".join(parts[: i + 1]) for i in range(len(parts))]  # src, src.torch_utils, src.torch_utils.persistence
    added = [name for name in names if name not in sys.modules]
    for name in added:
        sys.modules[name] = types.ModuleType(name)
    _reconstruct_persistent_obj.__module__ = PERSISTENCE_MODULE
    sys.modules[PERSISTENCE_MODULE]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]


class Persistent:
    """Pickles as the official persistence call for one module."""

    def __init__(self, class_name: str, state: dict, module_src: str) -> None:
        self.meta = {"type": "class", "version": 4, "module_src": module_src, "class_name": class_name,
                     "state": state}

    def __reduce__(self) -> tuple:
        return _reconstruct_persistent_obj, (self.meta,)


def _tree(flat: dict[str, torch.Tensor]) -> dict:
    """'a.b.weight' -> {'a': {'b': {'weight': tensor}}}."""
    root: dict = {}
    for key, value in flat.items():
        node = root
        *path, leaf = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return root


def _module(class_name: str, tree: dict, module_src: str, init_kwargs: dict | None = None) -> Persistent:
    params, buffers, modules = OrderedDict(), OrderedDict(), OrderedDict()
    for key, value in tree.items():
        if isinstance(value, dict):
            modules[key] = _module(key, value, module_src)
        elif key in BUFFERS:
            buffers[key] = value
        else:
            params[key] = torch.nn.Parameter(value.clone(), requires_grad=False)
    state = {"training": False, "_parameters": params, "_buffers": buffers, "_non_persistent_buffers_set": set(),
             "_modules": modules}
    if init_kwargs is not None:
        state["_init_args"] = ()
        state["_init_kwargs"] = init_kwargs
    return Persistent(class_name, state, module_src)


def official_init_kwargs(cfg: dict) -> tuple[dict, dict]:
    """Constructor arguments of the official G and D for the fixture's config (``tiny32.pt["config"]``)."""
    sampling = {"type": "random", "num_frames_per_video": cfg["num_frames"], "max_dist": 32,
                "total_dists": [1, 2, 4, 8, 16, 32], "fps": 25, "max_num_frames": 1024, "name": "random3"}
    g_cfg = OmegaConf.create({
        "source": "networks", "use_noise": False, "input": {"type": "temporal"}, "w_dim": cfg["w_dim"],
        "z_dim": cfg["z_dim"], "c_dim": cfg["c_dim"], "sampling": sampling,
        "motion": {"z_dim": cfg["motion_z_dim"], "v_dim": cfg["motion_v_dim"],
                   "motion_z_distance": cfg["motion_z_distance"], "gen_strategy": "conv",
                   "kernel_size": cfg["kernel_size"], "use_fractional_t": True, "fourier": True},
        "time_enc": {"cond_type": "concat_const", "dim": cfg["time_enc_dim"], "min_period_len": cfg["min_period_len"],
                     "max_period_len": cfg["max_period_len"], "phase_dropout_std": 1.0},
    })
    d_cfg = OmegaConf.create({"source": "networks", "mbstd_group_size": cfg["mbstd_group_size"], "sampling": sampling,
                              "concat_res": cfg["concat_res"], "num_frames_div_factor": cfg["num_frames_div_factor"],
                              "dummy_c": False})
    G = {"c_dim": cfg["c_dim"], "w_dim": cfg["w_dim"], "img_resolution": cfg["resolution"], "img_channels": 3,
         "cfg": g_cfg, "mapping_kwargs": {"num_layers": cfg["mapping_layers"]},
         "synthesis_kwargs": {"channel_base": cfg["channel_base"], "channel_max": cfg["channel_max"],
                              "num_fp16_res": 0, "conv_clamp": None}}
    D = {"c_dim": cfg["c_dim"], "img_resolution": cfg["resolution"], "img_channels": 3, "cfg": d_cfg,
         "channel_base": cfg["channel_base"], "channel_max": cfg["channel_max"], "num_fp16_res": 0,
         "conv_clamp": None, "block_kwargs": {}, "mapping_kwargs": {"num_layers": cfg["d_mapping_layers"]},
         "epilogue_kwargs": {"mbstd_group_size": cfg["mbstd_group_size"]}}
    return G, D


def write_official_snapshot(path: Path, G: dict[str, torch.Tensor], D: dict[str, torch.Tensor],
                            G_ema: dict[str, torch.Tensor], cfg: dict, module_src: str = "") -> Path:
    """An official-format ``network-snapshot-*.pkl`` from official-layout state_dicts and the fixture config."""
    g_kwargs, d_kwargs = official_init_kwargs(cfg)
    data = {
        "training_set_kwargs": {"path": "data/tiny_32.zip", "resolution": cfg["resolution"], "xflip": True},
        "G": _module("Generator", _tree(G), module_src, g_kwargs),
        "D": _module("Discriminator", _tree(D), module_src, d_kwargs),
        "G_ema": _module("Generator", _tree(G_ema), module_src, g_kwargs),
        "augment_pipe": None,
    }
    with open(path, "wb") as f, _official_name():
        pickle.dump(data, f, protocol=4)
    return path
