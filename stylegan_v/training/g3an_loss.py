"""G3AN's losses: a video D on the whole clip and an image D on one frame, each with its own binary
cross-entropy, and G trained against both (the public G3AN code: ``BCEWithLogitsLoss`` with real = 1,
fake = 0, G's targets real).

The same interface as :class:`stylegan_v.training.loss.VideoGANLoss`, so the loop's data, micro-batching,
gradient sync, checkpoints, tracking and metrics are shared; only the phases differ: ``"G"`` and ``"D"``
(G3AN has no regulariser, so no ``"Dreg"``). The frame shown to the image D is drawn once per phase for the
whole batch, separately for real and fake clips, as there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class G3ANLoss:
    r1_gamma = 0.0  # no R1: the loop never runs a "Dreg" phase

    def __init__(self, G: nn.Module, D: nn.Module) -> None:
        self.G, self.D = G, D  # D: models.g3an.G3ANDiscriminator (.video and .image)

    def _frame(self, K: int) -> int:
        return int(torch.randint(K, ()))

    def accumulate_gradients(self, phase: str, real: Tensor, real_t: Tensor, z: Tensor, fake_t: Tensor,
                             gain: float = 1.0, real_c: Tensor | None = None,
                             fake_c: Tensor | None = None) -> dict[str, Tensor]:
        """One phase on one micro-batch: real [B, K, 3, 64, 64] in [-1, 1], z [B, za + zm], times [B, K]."""
        B, K = real_t.shape
        stats: dict[str, Tensor] = {}
        if phase == "G":
            fake = self.G(z, fake_t, fake_c)
            logits = self.D.streams(fake, fake_c, frame=self._frame(K))
            loss_video = F.softplus(-logits["video"]).mean()  # BCE against "real"
            loss_image = F.softplus(-logits["image"]).mean()
            loss = loss_video + loss_image
            stats.update({"loss/G": loss.detach(), "loss/G_video": loss_video.detach(),
                          "loss/G_image": loss_image.detach()})
        elif phase == "D":
            with torch.no_grad():
                fake = self.G(z, fake_t, fake_c)
            real_logits = self.D.streams(real, real_c, frame=self._frame(K))
            fake_logits = self.D.streams(fake, fake_c, frame=self._frame(K))
            loss_video = F.softplus(-real_logits["video"]).mean() + F.softplus(fake_logits["video"]).mean()
            loss_image = F.softplus(-real_logits["image"]).mean() + F.softplus(fake_logits["image"]).mean()
            loss = loss_video + loss_image  # each D's parameters only see their own term
            stats.update({"loss/D": loss.detach(), "loss/D_video": loss_video.detach(),
                          "loss/D_image": loss_image.detach(),
                          "D/real_sign": real_logits["video"].detach().sign().mean()})
        else:
            raise ValueError(f"unknown phase {phase!r} for G3AN; valid: G, D")
        (loss * gain).backward()
        return stats
