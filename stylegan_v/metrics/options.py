"""What a metrics config can name: the metrics (name -> the numbers of its protocol) and the values of every
protocol switch.

Plain data, no torch or numpy: :mod:`stylegan_v.metrics.config` checks a config against it on the login node
(and ``--help`` loads nothing slower) without loading a detector.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # fvd | fid | isv
    num_videos: int  # N (fake videos; real videos up to N for FVD)
    num_frames: int  # frames per video/clip
    subsample: int = 1  # every s-th frame
    description: str = ""


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("fvd2048_16f", "fvd", 2048, 16, 1, "FVD_16, StyleGAN-V's protocol"),
        MetricSpec("fvd2048_128f", "fvd", 2048, 128, 1, "FVD_128: long clips expose motion quality"),
        MetricSpec("fvd2048_128f_subsample8f", "fvd", 2048, 16, 8, "16 frames, every 8th: a 128-frame window (StyleGAN-V naming)"),
        MetricSpec("fvd256_16f", "fvd", 256, 16, 1, "reduced FVD_16 for CPU runs (not comparable to the paper)"),
        MetricSpec("fid50k_full", "fid", 3125, 16, 1, "FID as StyleGAN-V computes it: 50 000 fake frames (3125 videos x t = 0..15) vs every real frame"),
        MetricSpec("fid2048_16f", "fid", 2048, 16, 1, "FID, the paper text's reading: 2048 videos x 16 frames (32 768 fakes) vs every real frame"),
        MetricSpec("isv2048_ucf", "isv", 2048, 16, 1, "video Inception Score with C3D (UCF-101), 10 splits of the shuffled videos"),
    )
}


# Which clips a video gives (Table 4):
# random_offset: one clip of n frames at a uniformly random start (the protocol);
# all: every non-overlapping clip; first: one clip from frame 0;
# still: one frame repeated n times (Table 4 "still real images"; which frame: STILL_FRAMES).
SELECTIONS = ("random_offset", "all", "first", "still")

# Which videos of a set enter (VIDEO_SELECTIONS):
# first: the first N videos in sorted name order among those with at least n * s frames; videos too short
#   are left out before counting, so N long-enough videos give N clips. StyleGAN-V's metric dataset does this
#   (sorted directory listing, short videos discarded, items 0 .. N-1).
# random: N videos drawn at random (seeded) from all videos; drawn videos shorter than the clip span
#   (n - 1) * s + 1 give no clip. The paper-text reading.
VIDEO_SELECTIONS = ("first", "random")

# Which frame a "still" clip repeats (STILL_FRAMES):
# any: a uniformly random frame of the whole video, as StyleGAN-V's static-video dataset script draws it;
# clip_start: the first frame of the random-offset clip (the paper-text reading: same frame as random_offset).
STILL_FRAMES = ("any", "clip_start")

# Real statistics across repeats:
# fixed: computed once (seed) and reused, only the fakes change (the reference caches real statistics under
#   a key without any seed, so every run after the first reuses them);
# redraw: new real clip offsets per repeat (seed + r), as the fakes (the paper-text reading).
REPEAT_REAL = ("fixed", "redraw")

# Covariance estimators: population divides by N (StyleGAN-V's FeatureStats: sum x x^T / N - mu mu^T),
# unbiased divides by N - 1 (np.cov's default).
COVARIANCES = ("population", "unbiased")

RESIZE_MODES = ("torch", "tf1")

# Table 4 "resized to 128²" (pre_resize = R):
# roundtrip: bilinear down to R², back up to the input size, rounded to uint8, then the usual resize to 224²
#   (the reference code's variant: down to 128, up to the 256² dataset resolution, to uint8, into I3D);
# direct: bilinear down to R², then straight to 224², no rounding (the paper-text reading).
PRE_RESIZE_MODES = ("roundtrip", "direct")

# What the FID Inception network sees (``metrics.fid_preprocessing``; see stylegan_v.metrics.inception):
# nvidia: TF1 bilinear resize to 299², then (p - 128) / 128, as the NVIDIA network behind fid50k_full;
# pytorch_fid: half-pixel-centre bilinear resize, then p / 127.5 - 1, as pytorch-fid.
PREPROCESSINGS = ("nvidia", "pytorch_fid")
