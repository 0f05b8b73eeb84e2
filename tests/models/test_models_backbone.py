"""StyleGAN2 backbone pieces: FIR resampling, fused == non-fused modulated conv, fp32 on CPU, D structure."""

from __future__ import annotations

import pytest
import torch
from numerics import FP16, reorder_tolerance

from stylegan_v.models.discriminator import Discriminator, minibatch_std
from stylegan_v.models.generator import Generator
from stylegan_v.models.layers import ModulatedConv, compute_dtype, downsample2d, fir_filter, upsample2d


def test_fir_resampling_preserves_constants_and_shapes() -> None:
    f = fir_filter()
    assert f.sum().item() == pytest.approx(1.0) and torch.equal(f, f.T)
    x = torch.full([2, 3, 8, 8], 0.7)
    up, down = upsample2d(x, f), downsample2d(x, f)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    # a 4 x 4 (up) or 4 x 4 (down) filter of weights summing to 1: 16-term sums of values 0.7
    tolerance = reorder_tolerance(terms=16, depth=1, scale=0.7, worst_case=True)
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 0.7), atol=tolerance, rtol=0)
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 0.7), atol=tolerance,
                               rtol=0)
    # the [1, 3, 3, 1] filter with gain 4: an impulse row spreads as 4 * (3/8) * (1, 3, 3, 1)/8
    imp = torch.zeros(1, 1, 4, 4)
    imp[0, 0, 1, 1] = 1.0
    row = upsample2d(imp, f)[0, 0, 2, :].tolist()
    assert row[1:5] == pytest.approx([4 * 3 / 8 * x / 8 for x in (1, 3, 3, 1)])


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_fused_and_non_fused_modconv_agree(up: bool, demodulate: bool) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv(8, 6, w_dim=16, kernel_size=3 if demodulate else 1, up=up and demodulate,
                         demodulate=demodulate, activation=demodulate)
    x, w = torch.randn(3, 8, 8, 8), torch.randn(3, 16)
    fused = conv(x, w, fused=True)
    # scaled weights vs scaled activations: sums of at most 8 x 3 x 3 = 72 terms rounded in other orders,
    # 4 deep (style affine, (transposed) convolution, FIR filter, demodulation)
    tolerance = reorder_tolerance(terms=72, depth=4, scale=fused.abs().max())
    torch.testing.assert_close(fused, conv(x, w, fused=False), atol=tolerance, rtol=0)


def test_cpu_runs_fp32_even_on_fp16_resolutions(tiny) -> None:
    G = Generator(tiny(), 32, 3)
    assert sum(b.is_fp16 for b in G.synthesis.blocks) == 3  # 8, 16, 32 are fp16 resolutions (min 8)
    assert not G.synthesis.use_fused(torch.device("cpu"))  # fused modconv is slower on CPU: never there
    dtypes = []
    for m in G.modules():
        m.register_forward_hook(lambda mod, inp, out: dtypes.extend(
            o.dtype for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, torch.Tensor)))
    video = G(torch.randn(2, G.z_dim), torch.tensor([[0.0, 1.0, 5.0], [3.0, 9.0, 33.0]]))
    assert video.dtype == torch.float32 and set(dtypes) == {torch.float32}


def test_generator_is_a_function_of_z_and_t(tiny) -> None:
    torch.manual_seed(0)
    G = Generator(tiny(), 32, 3)
    z, t = torch.randn(2, G.z_dim), torch.tensor([[0.0, 4.0, 8.0], [0.0, 4.0, 8.0]])
    a, b = G(z, t), G(z.clone(), t.clone())
    assert a.shape == (2, 3, 3, 32, 32) and torch.equal(a, b)
    assert not torch.allclose(a[:, 0], a[:, 2])  # frames of a video differ (motion)
    other = G(z, t, motion_seed=torch.tensor([5, 6]))  # same content, other motion
    assert not torch.allclose(other, a)


def test_discriminator_concat_and_time_projection(tiny) -> None:
    torch.manual_seed(0)
    cfg = tiny("resolution=64")
    D = Discriminator(cfg.discriminator, 64, 3)
    # k x C/2 at 16x16: the last per-frame block halves its channels (official num_frames_div_factor 2)
    assert len(D.frame_blocks) == 2 and D.video_blocks[0].conv0.weight.shape[1] == 3 * 16 // 2
    video = torch.randn(4, 3, 3, 64, 64)
    t1 = torch.tensor([[0.0, 1.0, 3.0]] * 4)
    logits = D(video, t1)
    assert logits.shape == (4, 1)
    assert torch.equal(D(video, t1 + 100.0), logits)  # only time differences matter (exact: whole frame numbers)
    assert not torch.allclose(D(video, torch.tensor([[0.0, 8.0, 30.0]] * 4)), logits)


def test_minibatch_std_groups() -> None:
    x = torch.randn(6, 4, 4, 4)
    y = minibatch_std(x, group_size=4, num_channels=1)  # 6 is not divisible by 4: groups of 3
    assert y.shape == (6, 5, 4, 4) and torch.equal(y[:, :4], x)


def test_fp16_choice_is_per_device_and_fp16_numerics_hold() -> None:
    assert compute_dtype(True, torch.device("cuda")) == torch.float16
    assert compute_dtype(True, torch.device("cpu")) == torch.float32
    assert compute_dtype(False, torch.device("cuda")) == torch.float32
    # the fp16 path (pre-normalised weights and styles), run here on CPU half tensors, matches fp32
    torch.manual_seed(0)
    conv = ModulatedConv(16, 8, 16, up=True, conv_clamp=256.0)
    x, w = torch.randn(2, 16, 8, 8), torch.randn(2, 16)
    ref = conv(x, w, fused=False)
    for fused in (False, True):
        out = conv(x.half(), w, fused=fused)
        assert out.dtype == torch.float16
        # fp16 rounding (u = 2^-11) of sums of 16 x 3 x 3 = 144 terms, 4 deep (affine, transposed convolution,
        # FIR filter, demodulation), against fp32
        tolerance = reorder_tolerance(terms=144, depth=4, scale=ref.abs().max(), unit=FP16)
        torch.testing.assert_close(out.float(), ref, atol=tolerance, rtol=0)


def test_fir_filter_is_twice_differentiable_without_per_channel_convolutions() -> None:
    """R1 differentiates D's input gradient; the FIR resampling must not fall back to PyTorch's double backward
    of grouped convolutions, which runs one convolution per channel (seconds per step on a GPU)."""
    from torch.profiler import ProfilerActivity, profile

    from stylegan_v.models.discriminator import DiscriminatorBlock
    from stylegan_v.models.layers import _depthwise_fir, fir_filter

    f = fir_filter().double()
    x = torch.randn(2, 5, 9, 9, dtype=torch.double, requires_grad=True)
    for pad, stride, gain in ((2, 1, 4.0), (1, 2, 1.0), (2, 2, 1.0)):
        def fir(a: torch.Tensor) -> torch.Tensor:
            return _depthwise_fir(a, f, pad, gain, stride)

        assert torch.autograd.gradcheck(fir, (x,)) and torch.autograd.gradgradcheck(fir, (x,))
    torch.manual_seed(0)
    block = DiscriminatorBlock(64, 64, 64, False, None)
    frames = torch.randn(2, 64, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(block(frames).sum(), frames, create_graph=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        grad.square().sum().backward()
    convolutions = sum(e.count for e in prof.key_averages() if e.key == "aten::convolution")
    assert convolutions < 20, f"{convolutions} convolutions in the double backward (64 channels)"


def test_grayscale_models_have_one_colour_channel(tiny) -> None:
    from stylegan_v.models.generator import to_rgb_uint8
    from stylegan_v.models.registry import build_models

    torch.manual_seed(0)
    G, D = build_models(tiny("img_channels=1"), 32, 3)
    t = torch.tensor([[0.0, 2.0, 5.0]] * 2)
    video = G(torch.randn(2, G.z_dim), t)
    assert video.shape == (2, 3, 1, 32, 32) and D(video, t).shape == (2, 1)
    frames = to_rgb_uint8(video)
    assert frames.shape == (2, 3, 3, 32, 32) and frames.dtype == torch.uint8
    assert torch.equal(frames[:, :, 0], frames[:, :, 2])  # gray repeated into RGB for videos and metrics
    values = to_rgb_uint8(torch.tensor([-1.0, -0.9961, 0.0, 1.0]).view(1, 1, 1, 4))  # [1, C=1, H=1, W=4]
    assert values.shape == (1, 3, 1, 4) and values[0, 0, 0].tolist() == [0, 0, 128, 255]  # rounded half up
