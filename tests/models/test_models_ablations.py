"""Every ablation switch of the paper (tables and appendix D) builds, runs G and D, and back-propagates."""

from __future__ import annotations

import pytest
import torch

from stylegan_v.models.registry import build_models

ABLATIONS: dict[str, list[str]] = {
    "default": [],
    "period_linear": ["motion.period_scheme=linear"],
    "period_geometric": ["motion.period_scheme=geometric", "motion.omega_min=16"],
    "period_exponential": ["motion.period_scheme=exponential"],
    "period_random": ["motion.period_scheme=random", "motion.random_xi=0.5"],
    "omega_min_sky": ["motion.omega_min=256"],
    "omega_max_small": ["motion.omega_max=128"],
    "kernel_5": ["motion.kernel_size=5"],
    "kernel_21": ["motion.kernel_size=21"],
    "distance_4": ["motion.code_distance=4"],
    "distance_64": ["motion.code_distance=64"],
    "hierarchical": ["motion.kind=hierarchical", "motion.hierarchical_distances=[8,32,128]"],
    "lstm": ["motion.kind=lstm"],
    "lstm_ema": ["motion.kind=lstm_ema", "motion.lstm_ema_beta=0.8"],
    "entropy": ["motion.entropy_weight=0.1"],
    "progressive": ["motion.progressive_frequencies=true"],
    "coords": ["synthesis.concat_coords=true"],
    "video_length": ["motion.video_length_cond=true"],
    "d_feature_diffs": ["discriminator.feature_diffs=true"],
    "d_predict_delta": ["discriminator.time_cond=predict"],
    "d_no_time": ["discriminator.time_cond=none"],
    "image_stylegan2": ["motion.kind=none", "num_frames=1"],
    "fused_always": ["synthesis.fused_modconv=always"],
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_builds_and_backprops(tiny, name: str) -> None:
    torch.manual_seed(0)
    cfg = tiny(*ABLATIONS[name])
    k = cfg.num_frames
    G, D = build_models(cfg, 32, k)
    G.set_progress(0.1)
    B = 2
    z = torch.randn(B, G.z_dim)
    t = torch.tensor([[0.0, 5.0, 17.0], [40.0, 41.0, 70.0]])[:, :k]
    video = G(z, t)
    assert video.shape == (B, k, 3, 32, 32) and torch.isfinite(video).all()
    logits = D(video, t)
    assert logits.shape == (B, 1)
    loss = torch.nn.functional.softplus(-logits).mean()
    g_extra, d_extra = G.extra_losses(), D.extra_losses()
    assert bool(g_extra) == (name == "entropy") and bool(d_extra) == (name == "d_predict_delta")
    (loss + sum(g_extra.values(), torch.zeros(())) + sum(d_extra.values(), torch.zeros(()))).backward()
    for module in (G.mapping, G.synthesis, D):
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
    if G.motion is not None:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.motion.parameters())


def test_k_frames_ablation(tiny) -> None:
    for k in (2, 4, 8):
        cfg = tiny(f"num_frames={k}")
        G, D = build_models(cfg, 32, k)
        t = torch.sort(torch.randint(0, 32, (2, k)).float(), dim=1).values
        D(G(torch.randn(2, G.z_dim), t), t).sum().backward()
        assert D.video_blocks[0].conv0.weight.shape[1] == k * D.frame_blocks[-1].conv1.weight.shape[0]


def test_models_deepcopy_after_forward_with_cached_loss_terms(tiny) -> None:
    """The loop deep-copies G for its EMA: cached extra-loss tensors must not break that."""
    import copy

    cfg = tiny("motion.entropy_weight=0.1", "discriminator.time_cond=predict")
    G, D = build_models(cfg, 32, 3)
    t = torch.tensor([[0.0, 2.0, 9.0]] * 2)
    D(G(torch.randn(2, G.z_dim), t), t)
    assert G.extra_losses() and D.extra_losses()
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    assert G2.extra_losses() == {} and D2.extra_losses() == {}
    assert torch.equal(G2.synthesis.blocks[0].const, G.synthesis.blocks[0].const)
