"""G3AN's losses: a video D on the whole clip and an image D on one frame, each with its own binary
cross-entropy, and G trained against both (the public G3AN code: ``BCEWithLogitsLoss`` with real = 1,
fake = 0, G's targets real).

The same interface as :class:`stylegan_v.training.loss.VideoGANLoss`, so the loop's data, micro-batching,
gradient sync, checkpoints, tracking and metrics are shared; only the phases differ. A step runs them in the
public trainer's order, ``"D"`` then ``"G"`` (G3AN has no regulariser, so no ``"Dreg"``): the D phase makes
the fake clips, and the G phase scores those same clips with the Ds it just updated, so G runs forward once
per step (its BatchNorm statistics and spectral-norm estimates advance once). The frame shown to the image D
is drawn once per micro-batch, separately for real and fake clips, and the G phase shows the image D the fake
frame the D phase drew, as there.
"""

from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class G3ANLoss:
    r1_gamma = 0.0  # no R1: the loop never runs a "Dreg" phase

    def __init__(self, G: nn.Module, D: nn.Module) -> None:
        self.G, self.D = G, D  # D: models.g3an.G3ANDiscriminator (.video and .image)
        # (z, fake clip with G's graph, its classes, its image-D frame) of each D-phase micro-batch, for the G phase
        self._kept: deque[tuple[Tensor, Tensor, Tensor | None, int]] = deque()

    def _frame(self, K: int) -> int:
        return int(torch.randint(K, ()))

    def accumulate_gradients(self, phase: str, real: Tensor, real_t: Tensor, z: Tensor, fake_t: Tensor,
                             gain: float = 1.0, real_c: Tensor | None = None,
                             fake_c: Tensor | None = None) -> dict[str, Tensor]:
        """One phase on one micro-batch: real [B, K, 3, 64, 64] in [-1, 1], z [B, za + zm], times [B, K].

        ``"D"`` makes the fake clips of z; when G's parameters require gradients it keeps them (with G's graph)
        for the ``"G"`` phase, which must then be called with the same z tensors, in the same order.
        """
        B, K = real_t.shape
        stats: dict[str, Tensor] = {}
        if phase == "D":
            fake = self.G(z, fake_t, fake_c)  # [B, K, 3, 64, 64]
            real_logits = self.D.streams(real, real_c, frame=self._frame(K))
            frame = self._frame(K)
            fake_logits = self.D.streams(fake.detach(), fake_c, frame=frame)
            loss_video = F.softplus(-real_logits["video"]).mean() + F.softplus(fake_logits["video"]).mean()
            loss_image = F.softplus(-real_logits["image"]).mean() + F.softplus(fake_logits["image"]).mean()
            loss = loss_video + loss_image  # each D's parameters only see their own term
            stats.update({"loss/D": loss.detach(), "loss/D_video": loss_video.detach(),
                          "loss/D_image": loss_image.detach(),
                          "D/real_sign": real_logits["video"].detach().sign().mean()})
            if fake.requires_grad:
                self._kept.append((z, fake, fake_c, frame))
        elif phase == "G":
            if not self._kept or self._kept[0][0] is not z:
                raise RuntimeError("G3AN's G phase scores the fake clips of the D phase before it: run the D phase "
                                   "first on the same z, with G's parameters requiring gradients")
            _, fake, fake_c, frame = self._kept.popleft()
            logits = self.D.streams(fake, fake_c, frame=frame)
            loss_video = F.softplus(-logits["video"]).mean()  # BCE against "real"
            loss_image = F.softplus(-logits["image"]).mean()
            loss = loss_video + loss_image
            stats.update({"loss/G": loss.detach(), "loss/G_video": loss_video.detach(),
                          "loss/G_image": loss_image.detach()})
        else:
            raise ValueError(f"unknown phase {phase!r} for G3AN; valid: D, G")
        (loss * gain).backward()
        return stats
