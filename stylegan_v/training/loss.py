"""StyleGAN-V loss: non-saturating logistic GAN loss with lazy R1 on real frames (appendix B.1).

The loss knows nothing of optimisers, ranks or schedules: :meth:`VideoGANLoss.accumulate_gradients` runs one
phase (``"G"``, ``"D"`` or ``"Dreg"``) on one micro-batch and calls ``backward``; the loop owns the rest.
Models contribute their own extra terms through ``extra_losses()`` (entropy of the wave parameters in G,
Δ-prediction in D); both return ``{}`` when their ablation is off.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Augment = Callable[[Tensor], Tensor]


def _extra(module: nn.Module) -> dict[str, Tensor]:
    extra = getattr(module, "extra_losses", None)
    return extra() if extra is not None else {}


class VideoGANLoss:
    """Losses of one training step, phase by phase; returns the scalars it logged.

    A D with several heads (``D.heads(videos, t, c) -> {name: logits}``, e.g. MoCoGAN+SG2's image and video
    discriminators) gets the softplus terms of every head summed, and R1 on ``D.r1_head`` only, as the official
    loss does; a plain D is one head.
    """

    def __init__(self, G: nn.Module, D: nn.Module, augment: Augment | None, r1_gamma: float) -> None:
        self.G, self.D, self.augment, self.r1_gamma = G, D, augment, r1_gamma

    def _D(self, videos: Tensor, t: Tensor, c: Tensor | None) -> dict[str, Tensor]:
        if self.augment is not None:
            videos = self.augment(videos)
        heads = getattr(self.D, "heads", None)
        return heads(videos, t, c) if heads is not None else {"": self.D(videos, t, c)}

    def _sign_head(self, logits: dict[str, Tensor]) -> Tensor:
        return logits[getattr(self.D, "r1_head", "")]

    def accumulate_gradients(self, phase: str, real: Tensor, real_t: Tensor, z: Tensor, fake_t: Tensor,
                             gain: float = 1.0, real_c: Tensor | None = None,
                             fake_c: Tensor | None = None) -> dict[str, Tensor]:
        """One phase on one micro-batch. real [B, k, 3, H, W] in [-1, 1]; real_t, fake_t [B, k]; z [B, z_dim];
        real_c, fake_c [B, c_dim] one-hot classes of a conditional model (None otherwise).

        ``gain`` scales the loss (1 / number of micro-batches, times the lazy-regularisation interval for R1).
        """
        B, K = real_t.shape
        assert real.shape[:2] == (B, K) and fake_t.shape == (B, K) and z.shape[0] == B, (real.shape, fake_t.shape)
        stats: dict[str, Tensor] = {}
        if phase == "G":
            fake = self.G(z, fake_t, fake_c)
            loss = sum(F.softplus(-logits).mean() for logits in self._D(fake, fake_t, fake_c).values())
            stats["loss/G"] = loss.detach()  # -log sigmoid(D(G(z))), per head
            for name, term in _extra(self.G).items():
                loss = loss + term
                stats[f"loss/G_{name}"] = term.detach()
        elif phase == "D":
            with torch.no_grad():
                fake = self.G(z, fake_t, fake_c)
            heads_fake = self._D(fake, fake_t, fake_c)
            heads_real = self._D(real, real_t, real_c)
            loss = sum(F.softplus(heads_fake[h]).mean() + F.softplus(-heads_real[h]).mean() for h in heads_real)
            stats["loss/D"] = loss.detach()
            logits_real, logits_fake = self._sign_head(heads_real), self._sign_head(heads_fake)
            stats["D/real_sign"] = logits_real.detach().sign().mean()  # ADA steers this towards its target
            stats["D/real"], stats["D/fake"] = logits_real.detach().mean(), logits_fake.detach().mean()
            for name, term in _extra(self.D).items():
                loss = loss + term
                stats[f"loss/D_{name}"] = term.detach()
        elif phase == "Dreg":
            real = real.detach().requires_grad_(True)
            logits = self._sign_head(self._D(real, real_t, real_c))
            (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
            # Squared gradient norm per frame, averaged over the k frames of each video.
            penalty = grad.square().sum(dim=(2, 3, 4)).mean(dim=1)  # [B]
            loss = penalty.mean() * (self.r1_gamma / 2)
            stats["loss/R1"], stats["R1/penalty"] = loss.detach(), penalty.detach().mean()
            stats["D/real_sign"] = logits.detach().sign().mean()  # ADA's statistic gathers the R1 phase too (official)
            loss = loss + logits.sum() * 0  # every parameter of the head gets a gradient (zero if unused), as official
        else:
            raise ValueError(f"unknown phase {phase!r}; valid: G, D, Dreg")
        (loss * gain).backward()
        return stats
