"""BANet losses (paper §3.2-3.3): segmentation BCE, boundary-attention BCE and the refine loss."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .gradients import SobelGradient, normalize_gray
from .model import BANetOutput


class RefineLoss(nn.Module):
    """Gradient loss inside the boundary band: L = L_cos + L_mag, averaged over band pixels.

    L_cos = (1 - |u_P . u_I|) |grad P|: prediction edges must run along image edges (either
    polarity). u_I shrinks to 0 where |grad I| < `image_eps`, so edges on flat image regions cost
    their full magnitude. L_mag = max(min(lambda |grad I|, 1) - |grad P|, 0): the prediction must
    be at least lambda times as sharp as the image, capped at a unit step (our reading; the
    uncapped form can never reach zero on a normalized image).
    """

    def __init__(self, magnitude_factor: float = 1.5, magnitude_weight: float = 1.0,
                 image_eps: float = 0.05) -> None:
        super().__init__()
        self.magnitude_factor = magnitude_factor
        self.magnitude_weight = magnitude_weight
        self.image_eps = image_eps
        self.sobel = SobelGradient()

    def forward(self, image: torch.Tensor, confidence: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
        """image (N,3,H,W) in [0,1]; confidence (N,1,H,W) in [0,1]; band (N,1,H,W) 0/1."""
        g_img = self.sobel(normalize_gray(image))
        g_pred = self.sobel(confidence)
        ix, iy = g_img.direction(self.image_eps)
        px, py = g_pred.direction()
        cos_term = (1 - (ix * px + iy * py).abs()) * g_pred.magnitude
        target = (self.magnitude_factor * g_img.magnitude).clamp(max=1.0)
        mag_term = F.relu(target - g_pred.magnitude)
        per_pixel = (cos_term + self.magnitude_weight * mag_term) * band
        return per_pixel.sum() / band.sum().clamp_min(1.0)


class LossTerms(NamedTuple):
    total: torch.Tensor
    segmentation: torch.Tensor
    boundary: torch.Tensor
    refine: torch.Tensor


class BANetLoss(nn.Module):
    """Weighted sum alpha*L_seg + beta*L_BA + gamma*L_refine (0.6/0.3/0.1, the unofficial reading).

    `gamma=0` is the paper's pretraining stage; a base model (no attention map) skips L_BA.
    """

    def __init__(self, alpha: float = 0.6, beta: float = 0.3, gamma: float = 0.1,
                 magnitude_factor: float = 1.5) -> None:
        super().__init__()
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.refine = RefineLoss(magnitude_factor)

    def forward(self, output: BANetOutput, image: torch.Tensor, mask: torch.Tensor,
                band: torch.Tensor) -> LossTerms:
        """mask and band: (N,1,H,W) floats in [0,1] (soft masks allowed)."""
        seg = F.binary_cross_entropy_with_logits(output.logits, mask)
        zero = seg.new_zeros(())
        boundary = zero
        if output.attention_logits is not None and self.beta:
            boundary = F.binary_cross_entropy_with_logits(output.attention_logits, band)
        refine = self.refine(image, torch.sigmoid(output.logits), band) if self.gamma else zero
        total = self.alpha * seg + self.beta * boundary + self.gamma * refine
        return LossTerms(total, seg, boundary, refine)
