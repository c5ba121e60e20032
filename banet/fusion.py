"""BiSeNet's feature fusion module (Yu et al., ECCV 2018)."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBNReLU


class FeatureFusionModule(nn.Module):
    """Concatenate, conv-BN-ReLU, then re-weight channels by a globally pooled attention vector."""

    def __init__(self, in_ch: int, out_ch: int, reduction: int = 4) -> None:
        super().__init__()
        self.fuse = ConvBNReLU(in_ch, out_ch, 1)  # 1x1 as in BiSeNet's reference code
        hidden = max(out_ch // reduction, 1)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(out_ch, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_ch, 1),
            nn.Sigmoid(),
        )

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused features (N,C,H,W) and their channel weights 1 + attention (N,C,1,1). BiSeNet's output
        is their product (x + x * attention); it is left to the caller, which folds the weights into
        its next 1x1 convolution (`blocks.weighted_pointwise`) instead of a full-resolution multiply."""
        x = self.fuse(torch.cat([detail, semantic], dim=1))
        return x, 1 + self.attention(x)
