"""Generators and discriminators: StyleGAN-V (and its ablations), MoCoGAN+SG2, G3AN.

Public API used by the other stages:
- ``build_models(cfg.model, resolution, num_frames) -> (G, D)`` (``registry``);
- ``G(z [B, z_dim], t [B, k], c=None) -> [B, k, 3, H, W]``, ``G.extra_losses()``, ``G.set_progress(fraction)``;
- ``D(video [B, k, 3, H, W], t [B, k]) -> [B, 1]`` logits, ``D.extra_losses()``;
- ``generate_frames(G, z, t_chunks)`` and ``time_chunks(...)`` for long videos (``generator``);
- ``init_periods`` / ``scheme_cycle_length`` for Figure 9 (``periods``).
"""
