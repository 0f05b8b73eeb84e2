"""G3AN's public-code generator (``model.g3an_variant=code``) against outputs its public code produced.

``tests/fixtures/g3an_public_code.pt`` (tensors and plain data: ``torch.load(weights_only=True)``) was made by
running the model code of wyhsirius/g3an-project (commit 74764fd, ``model/networks.py`` and ``model/ops.py``,
copied outside this repository) on the CPU with PyTorch 2.13:

- ``full_width``: parameter counts of its ``Generator(128, 10, 64, g_mode, use_attention)`` for every g_mode with
  and without attention, of ``VideoDiscriminator(64)`` and ``ImageDiscriminator(64)``, and the state-dict layout
  (names and shapes) of the default generator and both discriminators;
- ``small[g_mode]``: a ``Generator(c_a=8, c_m=3, ch, g_mode, use_attention=True)`` (ch 4 for 1p2d, 2 otherwise)
  built with a fixed seed, every parameter perturbed (attention gammas in [0.5, 1.5), running statistics
  random), then one train-mode forward (so spectral norm's u and v have moved); its ``state_dict``, inputs
  z_a [2, 8, 1, 1, 1] and z_m [2, 3, 1, 1, 1], and the video it makes in float64 (``G.double()``) in eval mode,
  and for 1p2d also in train mode (batch statistics, one power iteration; with the buffers after it) and without
  attention (the same weights in ``Generator(..., use_attention=False)``). Videos [2, 3, 16, 64, 64] are stored as
  every 4th pixel plus, per frame and channel, the mean, the mean square and a ramp-weighted mean of all pixels;
- ``discriminators``: ``VideoDiscriminator(4)`` and ``ImageDiscriminator(4)`` perturbed after eight power
  iterations, and their float64 logits in eval and train mode on a fixed integer pattern video and its frame 5.

Both sides compute in float64, so they differ only by the summation order of the convolution and matmul kernels
(CPU-dependent). The longest reduction here has n = 1024 terms (S-SA over 32 x 32 pixels), so each layer
differs by at most n * 2^-53 ~ 1.1e-13 of its terms' magnitude; through the ~20 layers, BatchNorm's division by
standard deviations >= 0.5 (eval) or by batch statistics (train) and tanh, that stays orders of magnitude below
ATOL = 1e-9, while a real difference in the computation is far above it (a transposition instead of the public
code's reshape in T-SA moves the eval output by 0.05).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from stylegan_v.models.config import G3ANConfig
from stylegan_v.models.g3an import G3ANDiscriminator
from stylegan_v.models.g3an_code import G3ANCodeGenerator
from stylegan_v.models.registry import build_models

FIXTURE = Path(__file__).parents[1] / "fixtures" / "g3an_public_code.pt"
ATOL = 1e-9  # float64 on both sides; see the module docstring
G_MODES = {"1p2d": "temporal_spatial", "2p1d": "spatial_temporal", "3d": "joint"}  # public g_mode -> video_conv


@pytest.fixture(scope="module")
def public() -> dict:
    return torch.load(FIXTURE, weights_only=True)


def _summary(video: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the fixture stores of a [B, 3, 16, 64, 64] video (see the module docstring)."""
    ramp = torch.linspace(-1, 1, 64, dtype=video.dtype)[None, None, None, :, None]
    return {"sub": video[..., ::4, ::4], "mean": video.mean(dim=(3, 4)), "sq": (video * video).mean(dim=(3, 4)),
            "ramp": (video * ramp).mean(dim=(3, 4))}


def _small(record: dict, mode: str, attention: bool = True) -> tuple[G3ANCodeGenerator, torch.Tensor]:
    c = record["config"]
    cfg = G3ANConfig(za_dim=c["c_a"], zm_dim=c["c_m"], base_channels=8 * c["ch"], video_conv=G_MODES[mode],
                     attention=attention)
    G = G3ANCodeGenerator(cfg, 16)
    state = record["state_dict"] if attention else {k: v for k, v in record["state_dict"].items()
                                                    if not k.startswith("fsa.")}
    G.load_state_dict(state)  # strict: the public state dict, names and all
    z = torch.cat([record["inputs"]["za"].flatten(1), record["inputs"]["zm"].flatten(1)], dim=1)  # [z_a, z_m]
    return G.double(), z


def _assert_video(G: G3ANCodeGenerator, z: torch.Tensor, expected: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        video, _ = G.video(z)
    got = _summary(video)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=ATOL, msg=lambda m, k=key: f"{k}: {m}")


def test_parameter_counts_and_layout_equal_the_public_code(public: dict) -> None:
    """Full width (z_a 128, z_m 10, 512 base channels, D 64): every count equals the public code's, and the default
    G and both Ds have its state-dict names and shapes, so its checkpoints load as they are."""
    full = public["full_width"]
    with torch.device("meta"):  # shapes only: nothing allocated or initialised
        for mode, conv in G_MODES.items():
            for attention in (True, False):
                G, _ = build_models(G3ANConfig(video_conv=conv, attention=attention), 64, 16)
                key = f"G_{mode}_{'attention' if attention else 'no_attention'}_params"
                assert sum(p.numel() for p in G.parameters()) == full[key], key
        G, D = build_models(G3ANConfig(), 64, 16)
    assert full["G_1p2d_attention_params"] == 23_090_437
    for module, layout in ((G, full["G_layout"]), (D.video, full["VD_layout"]), (D.image, full["ID_layout"])):
        state = module.state_dict()
        assert list(state) == layout["keys"]
        assert [list(v.shape) for v in state.values()] == layout["shapes"]
    assert sum(p.numel() for p in D.video.parameters()) == full["VD_params"]
    assert sum(p.numel() for p in D.image.parameters()) == full["ID_params"]


@pytest.mark.parametrize("mode", ["1p2d", "2p1d", "3d"])
def test_eval_forward_equals_the_public_code(public: dict, mode: str) -> None:
    record = public["small"][mode]
    G, z = _small(record, mode)
    assert sum(p.numel() for p in G.parameters()) == record["params"]
    _assert_video(G.eval(), z, record["eval"])


def test_train_forward_and_buffers_equal_the_public_code(public: dict) -> None:
    """Train mode: BatchNorm on batch statistics and one spectral-norm power iteration, as there; the moved u
    vectors and running statistics too."""
    record = public["small"]["1p2d"]
    G, z = _small(record, "1p2d")
    _assert_video(G.train(), z, record["train"])
    state = G.state_dict()
    for key, value in record["train_buffers_after"].items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=ATOL, msg=lambda m, k=key: f"{k}: {m}")


def test_without_attention_equals_the_public_code(public: dict) -> None:
    """``model.attention=false`` is the public train.py's default run (``--use_attention`` off)."""
    record = public["small"]["1p2d"]
    G, z = _small(record, "1p2d", attention=False)
    assert not hasattr(G, "fsa")
    _assert_video(G.eval(), z, record["eval_no_attention"])
    # the fixture's attention does move the output (its gammas are not zero), so the other tests cover it
    assert (record["eval"]["sub"] - record["eval_no_attention"]["sub"]).abs().max() > 1e-2


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_discriminators_equal_the_public_code(public: dict, mode: str) -> None:
    record = public["discriminators"]
    D = G3ANDiscriminator(G3ANConfig(d_channels=4), 16)
    D.video.load_state_dict(record["VD"])
    D.image.load_state_dict(record["ID"])
    b, c, t, h, w = torch.meshgrid(*(torch.arange(n) for n in (2, 3, 16, 64, 64)), indexing="ij")
    video = ((b * 101 + c * 53 + t * 29 + h * 13 + w * 7) % 256).double() / 127.5 - 1  # [B, C, T, H, W]
    D = copy.deepcopy(D).double().train(mode == "train")
    with torch.no_grad():
        logits = D.streams(video.transpose(1, 2), frame=record["frame"])
    torch.testing.assert_close(logits["video"][:, 0], record[f"VD_{mode}"], rtol=0, atol=ATOL)
    torch.testing.assert_close(logits["image"][:, 0], record[f"ID_{mode}"], rtol=0, atol=ATOL)


def test_structure_as_the_public_code_builds_it() -> None:
    """Spectral norm on every transposed conv and attention conv (not on to_rgb), BatchNorm + ReLU after each
    transposed conv, temporal-then-spatial G_V, fused features h_s ++ (h_v + h_t), to_rgb 1x3x3 + tanh."""
    with torch.device("meta"):
        G, _ = build_models(G3ANConfig(), 64, 16)
    assert isinstance(G, G3ANCodeGenerator)
    transposed = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose3d)]
    assert len(transposed) == 5 * 4 and all(hasattr(m, "weight_orig") for m in transposed)
    attention = [m for m in G.fsa.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(attention) == 6 and all(hasattr(m, "weight_orig") and m.kernel_size == (1, 1, 1) for m in attention)
    assert [m.out_channels for m in attention] == [256 // 8, 256 // 8, 256] * 2  # q, k: C / 8; v: C
    rgb = G.to_rgb[0]
    assert rgb.kernel_size == (1, 3, 3) and rgb.padding == (0, 1, 1) and not hasattr(rgb, "weight_orig")
    assert isinstance(G.to_rgb[1], torch.nn.Tanh)
    kinds = [type(m).__name__ for m in G.block2.conv_v]
    assert kinds == ["ConvTranspose3d", "BatchNorm3d", "ReLU"] * 2
    assert [m.kernel_size for m in G.block2.conv_v if isinstance(m, torch.nn.ConvTranspose3d)] == [(4, 1, 1), (1, 4, 4)]
    with torch.no_grad():  # G_V after each module: h_s ++ (h_v + h_t), twice the module's 8, 8, 4, 2, 1 x ch
        video, feats = G.video(torch.empty(2, G.z_dim, device="meta"))
    assert video.shape == (2, 3, 16, 64, 64)
    assert [tuple(f.shape[1:]) for f in feats] == [(1024, 4, 4, 4), (1024, 8, 8, 8), (512, 16, 16, 16),
                                                   (256, 16, 32, 32), (128, 16, 64, 64)]
    torch.manual_seed(0)
    small = G3ANCodeGenerator(G3ANConfig(base_channels=16, za_dim=4, zm_dim=2), 16).eval()
    with torch.no_grad():
        video, _ = small.video(torch.randn(2, small.z_dim) * 30)
    assert video.abs().max() <= 1 and video.abs().max() > 0.5  # tanh


def test_fusion_puts_appearance_first_and_adds_motion_everywhere() -> None:
    """After a module, the first half of G_V's channels is h_s at every frame and the second is h_v + h_t."""
    torch.manual_seed(0)
    G = G3ANCodeGenerator(G3ANConfig(base_channels=32, za_dim=6, zm_dim=3), 16).eval()
    h_s, h_v, h_t = torch.randn(2, 6, 1, 1, 1), torch.randn(2, 9, 1, 1, 1), torch.randn(2, 3, 1, 1, 1)
    with torch.no_grad():
        s, v, t = G.block1(h_s, h_v, h_t)
        alone = G.block1.conv_v(h_v)
    assert s.shape == (2, 32, 1, 4, 4) and t.shape == (2, 32, 4, 1, 1) and v.shape == (2, 64, 4, 4, 4)
    torch.testing.assert_close(v[:, :32], s.expand(-1, -1, 4, -1, -1))
    torch.testing.assert_close(v[:, 32:], alone + t)


def test_public_initialisation() -> None:
    """N(0, 0.02) for to_rgb and the attention convs, BatchNorm weight N(1, 0.02) and bias 0, gamma 0, and PyTorch's
    default (uniform within 1/sqrt(fan_in)) for the transposed convs."""
    torch.manual_seed(0)
    G, _ = build_models(G3ANConfig(base_channels=256), 64, 16)
    G.requires_grad_(False)
    weights = [m.weight_orig for m in G.fsa.modules() if isinstance(m, torch.nn.Conv3d)] + [G.to_rgb[0].weight]
    normal = torch.cat([w.flatten() for w in weights])  # 43k samples: std and mean within 6 and 4 sigma
    assert abs(float(normal.std()) - 0.02) < 0.0004 and abs(float(normal.mean())) < 0.0004
    bn = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, torch.nn.BatchNorm3d)])
    assert abs(float(bn.mean()) - 1) < 0.002 and abs(float(bn.std()) - 0.02) < 0.002  # 2.9k samples
    assert all(float(m.bias.abs().max()) == 0 for m in G.modules() if isinstance(m, torch.nn.BatchNorm3d))
    assert float(G.fsa.tsa.gamma) == float(G.fsa.ssa.gamma) == 0.0
    for m in (m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose3d)):
        fan_in = m.weight_orig.shape[1] * m.weight_orig[0, 0].numel()  # PyTorch's fan_in of a transposed conv
        bound = fan_in ** -0.5
        assert float(m.weight_orig.abs().max()) <= bound and float(m.weight_orig.abs().max()) > 0.9 * bound


def test_code_is_the_default_and_the_appendix_a_named_option(compose) -> None:
    from stylegan_v.models.config import to_model_config
    from stylegan_v.models.g3an import G3ANAppendixGenerator

    cfg = to_model_config(compose("model=g3an").model)
    assert cfg.g3an_variant == "code" and cfg.channels == 512 and cfg.attention
    appendix = to_model_config(compose("model=g3an", "model.g3an_variant=appendix").model)
    assert appendix.channels == 1024  # Table 1
    G, _ = build_models(G3ANConfig(g3an_variant="appendix", base_channels=64, d_channels=8), 64, 16)
    assert isinstance(G, G3ANAppendixGenerator)
    with pytest.raises(ValueError, match="multiple of 8"):
        G3ANConfig(base_channels=36)
    # a checkpoint's config saved before the variants existed rebuilds the generator it was trained with
    assert to_model_config({"name": "g3an", "base_channels": 64}).g3an_variant == "appendix"
    assert to_model_config({"name": "g3an", "g3an_variant": "code"}).g3an_variant == "code"
