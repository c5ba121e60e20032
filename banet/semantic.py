"""Semantic branch: a bottleneck encoder down to 1/32 and an FCN-4s decoder back to 1/4."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBNReLU, make_stage

STAGE_CHANNELS = (64, 128, 256, 512)  # ResNet widths at 1/4 .. 1/32, each capped at `width`


def upsample_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of `x` to the spatial size of `ref`."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class SemanticEncoder(nn.Module):
    """Stem at 1/2, then four bottleneck stages at 1/4, 1/8, 1/16 and 1/32."""

    def __init__(
        self,
        in_ch: int,
        width: int,
        depths: Sequence[int],
        expansions: Sequence[int],
        stem_ch: int = 16,
    ) -> None:
        super().__init__()
        self.channels = [min(c, width) for c in STAGE_CHANNELS]
        stem = min(stem_ch, width)
        self.stem = ConvBNReLU(in_ch, stem, 3, stride=2)
        ins = [stem, *self.channels[:-1]]
        self.stages = nn.ModuleList(
            make_stage(i, o, d, 2, e)
            for i, o, d, e in zip(ins, self.channels, depths, expansions)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class FCN4sDecoder(nn.Module):
    """FCN-4s: project every scale, upsample the coarser sum and add, from 1/32 down to 1/4."""

    def __init__(self, in_channels: Sequence[int], out_ch: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(ConvBNReLU(c, out_ch, 1, relu=False) for c in in_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](feats[-1])
        for lateral, feat in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            skip = lateral(feat)
            x = upsample_to(x, skip) + skip
        return self.act(x)
