"""G3AN baseline: the appendix reading's Table 1 sizes and self-attention, conditioning, two-stream D.

The public-code generator (the default) is pinned against its public code in test_models_g3an_code.py."""

from __future__ import annotations

import pytest
import torch

from stylegan_v.models.config import G3ANConfig
from stylegan_v.models.g3an import TABLE1, FactorisedSelfAttention, G3ANAppendixGenerator, G3ANDiscriminator
from stylegan_v.models.registry import build_models


def test_g3an_output_and_module_sizes_match_table1() -> None:
    torch.manual_seed(0)
    G, D = build_models(G3ANConfig(g3an_variant="appendix"), 64, 16)
    assert isinstance(G, G3ANAppendixGenerator)
    assert TABLE1 == [(1024, 4, 2), (512, 8, 4), (256, 16, 8), (128, 32, 16), (64, 64, 16)]
    with torch.no_grad():
        video, feats = G.eval().video(torch.randn(1, G.z_dim))
    assert video.shape == (1, 3, 16, 64, 64)  # 3 x 16 x 64 x 64
    assert video.abs().max() <= 1.0  # tanh output
    assert [tuple(f.shape[1:]) for f in feats] == [(c, t, s, s) for c, s, t in TABLE1]  # [C, T, H, W]
    assert len(G.synthesis.appearance) == len(G.synthesis.video) == len(G.motion.layers) == 5
    # every 1-D / 2-D / 3-D stream layer is a ConvTranspose3d, as the appendix says
    for stream in (G.synthesis.appearance, G.synthesis.video, G.motion.layers):
        assert all(isinstance(layer[0], torch.nn.ConvTranspose3d) for layer in stream)


def test_factorised_attention_structure_and_residual() -> None:
    fsa = FactorisedSelfAttention(64)
    for name in ("f_t", "g_t", "f_s", "g_s"):
        conv = getattr(fsa, name)
        assert conv.kernel_size == (1, 1, 1) and conv.out_channels == 64 // 8  # C' = C / 8
    assert fsa.h_t.out_channels == fsa.h_s.out_channels == 64
    x = torch.randn(2, 64, 4, 6, 6)
    torch.testing.assert_close(fsa(x), x)  # gamma starts at 0: identity (residual)
    with torch.no_grad():
        fsa.gamma_t.fill_(1.0)
    y = fsa(x)
    assert not torch.allclose(y, x)
    # temporal attention only mixes frames of the same pixel: perturbing one pixel leaves the others unchanged
    x2 = x.clone()
    x2[:, :, :, 0, 0] += 1.0
    with torch.no_grad():
        fsa.gamma_s.zero_()
        diff = (fsa(x2) - fsa(x)).abs().sum(dim=(0, 1, 2))
    assert diff[0, 0] > 0 and diff.flatten()[1:].max() < 1e-4


@pytest.mark.parametrize("variant", ["code", "appendix"])
def test_conditional_g3an_api_and_backward(variant: str) -> None:
    torch.manual_seed(0)
    # narrow, attention at 8 x 8 (not 32 x 32): a fast backward
    cfg = G3ANConfig(g3an_variant=variant, num_classes=6, base_channels=32, d_channels=8, attention_after=1)
    G, D = build_models(cfg, 64, 16)
    c = torch.nn.functional.one_hot(torch.tensor([1, 4]), 6).float()
    z = torch.randn(2, G.z_dim)
    t = torch.arange(16.0)[None].expand(2, -1)
    video = G(z, t, c)
    assert video.shape == (2, 16, 3, 64, 64)
    other = G(z, t, torch.nn.functional.one_hot(torch.tensor([2, 2]), 6).float())
    assert not torch.allclose(other, video)  # the category changes the motion
    streams = D.streams(video, c, frame=3)
    assert streams["image"].shape == (2, 1) and streams["video"].shape == (2, 1)
    D(video, t, c).mean().backward()
    motion = G.motion if variant == "appendix" else G.block1.conv_t  # G_M, which takes z_m and the class
    assert all(p.grad is not None for p in motion.parameters())
    assert G.extra_losses() == {} and D.extra_losses() == {}
    # frames are picked by t: frame 5 of the full video (eval: spectral norm's estimate stays put between calls)
    with torch.no_grad():
        G.eval()
        picked = G(z, torch.tensor([[5.0], [5.0]]), c)
        torch.testing.assert_close(picked[:, 0], G(z, t, c)[:, 5])


def test_public_code_discriminators_spectral_norm_and_sizes() -> None:
    """The video D (1x4x4 / 4x1x1 pairs) and image D (4x4 stride 2) of the public code, spectrally normalised,
    without BatchNorm; a conditional D takes the one-hot class as extra input channels."""
    cfg = G3ANConfig(num_classes=3, base_channels=32, d_channels=8)
    D = G3ANDiscriminator(cfg, 16)
    convs = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    assert convs and all(hasattr(m, "weight_orig") for m in convs)  # spectral norm on every conv
    assert not [m for m in D.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert D.video.net[0].in_channels == D.image.net[0].in_channels == 3 + 3
    assert [m.kernel_size for m in D.video.net if isinstance(m, torch.nn.Conv3d)][:2] == [(1, 4, 4), (4, 1, 1)]
