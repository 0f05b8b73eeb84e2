"""The one tiny training config the tests share: the smoke experiment shrunk to 32² and seconds per step.

Importable from any test module (pytest puts ``tests/`` on the path for its conftest.py).
"""

TINY = [
    "experiment=smoke", "dataset.num_videos=12", "dataset.resolution=32", "dataset.digit_size=14",
    "model.synthesis.channel_max=32", "model.discriminator.channel_max=32", "model.discriminator.cmap_dim=32",
    "model.mapping.z_dim=32", "model.mapping.w_dim=32", "model.motion.noise_dim=32", "model.motion.code_dim=32",
    "model.motion.embed_dim=32", "training.batch_size=2", "training.kimg_per_tick=0.004",
    "training.snapshot_ticks=100", "training.sample_grid=[1,2]",
]
# With a 2-video FVD snapshot, for tests that need a measured score.
TINY_WITH_FVD = [*TINY, "training.metrics=[fvd256_16f]", "metrics.num_videos=2", "metrics.progress=false"]
# The tiny G3AN the G3AN tests share (with `+sweep/baselines=g3an`); attention at 8 x 8 rather than 32 x 32, which
# would be most of a step's time on a CPU.
TINY_G3AN = ["model.base_channels=32", "model.d_channels=8", "model.za_dim=16", "model.zm_dim=4",
             "model.attention_after=1"]
