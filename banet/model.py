"""BANet: Boundary-Aware Network for fast and high-accuracy portrait segmentation (Chen et al. 2019)."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import load_model
from torch import nn

from .blocks import ConvBNReLU, weighted_pointwise
from .fusion import FeatureFusionModule
from .semantic import FCN4sDecoder, SemanticEncoder, upsample_to

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAD_MULTIPLE = 32  # five stride-2 stages down to 1/32: inputs are padded to a multiple of this


class BANetOutput(NamedTuple):
    """Logits at the input's resolution; sigmoid(attention_logits) is the boundary attention map
    (temperature already applied). `attention_logits` is None for the base model."""

    logits: torch.Tensor
    attention_logits: torch.Tensor | None


class BANet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="banet",
    tags=["image-segmentation", "portrait-segmentation", "banet"],
    paper_url="https://arxiv.org/abs/1901.03814",
):
    """Semantic branch -> boundary attention -> boundary feature mining -> fusion -> confidence map.

    Input: RGB images in [0, 1], shape (N, 3, H, W), any H and W (padded to a multiple of 32
    internally and cropped back). `boundary_attention=False` is the paper's base model, whose
    mining branch sees the plain image.
    """

    def __init__(
        self,
        width: int = 64,
        depths: Sequence[int] = (1, 1, 10, 2),
        expansions: Sequence[int] = (4, 2, 1, 1),
        mining_channels: int = 8,
        fuse_channels: int = 10,  # 8 detail + 2 semantic: 22 ms vs 28 ms for 16 (ORT, 512x512, 2 cores)
        boundary_attention: bool = True,
        temperature: float = 2.0,  # paper: a "softer" sigmoid for the attention map; T=2 is our choice
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        input_size: int = 512,  # long side the Predictor resizes photos to (training: TrainConfig.inference_size)
    ) -> None:
        super().__init__()
        if not 0 < mining_channels < fuse_channels:
            raise ValueError(f"fuse_channels ({fuse_channels}) must exceed mining_channels ({mining_channels}) "
                             "> 0: the fusion takes both branches")
        self.input_size = input_size
        self.boundary_attention = boundary_attention
        self.temperature = float(temperature)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

        self.encoder = SemanticEncoder(3, width, depths, expansions)
        decoder_ch = self.encoder.channels[0]
        self.decoder = FCN4sDecoder(self.encoder.channels, decoder_ch)
        self.attention_head = nn.Conv2d(decoder_ch, 1, 1) if boundary_attention else None
        # Project to few channels at 1/4 before upsampling: full-resolution memory traffic
        # dominates CPU latency (the paper does not say where the reduction happens).
        self.semantic_proj = ConvBNReLU(decoder_ch, fuse_channels - mining_channels, 1)
        mining_in = 4 if boundary_attention else 3
        self.mining = nn.Sequential(
            ConvBNReLU(mining_in, mining_channels, 3),
            ConvBNReLU(mining_channels, mining_channels, 3),
        )
        self.fusion = FeatureFusionModule(fuse_channels, fuse_channels)
        self.classifier = nn.Conv2d(fuse_channels, 1, 1)

    def forward(self, image: torch.Tensor) -> BANetOutput:
        h, w = image.shape[-2:]
        pad_h, pad_w = -h % PAD_MULTIPLE, -w % PAD_MULTIPLE
        x = (image - self.mean) / self.std
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")

        semantic = self.decoder(self.encoder(x))
        mining_in = x
        attention_logits = None
        if self.attention_head is not None:
            # temperature before upsampling (both linear): the division runs at 1/4 resolution
            attention_logits = upsample_to(self.attention_head(semantic) / self.temperature, x)
            mining_in = torch.cat([x, torch.sigmoid(attention_logits)], dim=1)
        detail = self.mining(mining_in)
        context = upsample_to(self.semantic_proj(semantic), x)
        logits = weighted_pointwise(self.classifier, *self.fusion(detail, context))

        logits = logits[..., :h, :w]
        if attention_logits is not None:
            attention_logits = attention_logits[..., :h, :w]
        return BANetOutput(logits, attention_logits)


    # --- weights I/O (huggingface_hub.PyTorchModelHubMixin conventions) ---------------------

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> str | None:
        """Write model.safetensors, config.json and a model card atomically: into a temporary
        sibling folder first, then swapped in, so a crash never leaves a half-written folder."""
        target = Path(save_directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            card = target / "README.md"
            if card.is_file():  # keep a hand-written model card
                shutil.copy2(card, staging / "README.md")
            result = super().save_pretrained(staging, **kwargs)
            _default_permissions(staging)
            old = target.with_name(f".{target.name}.old")
            if target.exists():
                os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
            return result
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str = "cpu", strict: bool = True,
                         **kwargs: Any) -> BANet:
        if not os.path.isdir(model_id):  # Hub repo id: let the mixin download (safetensors only)
            model = super()._from_pretrained(model_id=model_id, map_location=map_location,
                                             strict=strict, **kwargs)
        else:
            hub_args = ("revision", "cache_dir", "force_download", "local_files_only", "token")
            model = cls(**{k: v for k, v in kwargs.items() if k not in hub_args})
            load_model(model, os.path.join(model_id, "model.safetensors"), strict=strict, device=str(map_location))
            model.eval()
        # map_location places the loaded tensors only; the normalisation buffers built in __init__ follow here
        return model.to(map_location)

    @classmethod
    def _load_as_pickle(cls, model: Any, model_file: str, map_location: str, strict: bool) -> Any:
        raise ValueError(f"{model_file}: refusing to unpickle weights; only safetensors are loaded")


def _default_permissions(folder: Path) -> None:
    """mkdtemp makes 0700 folders; give the saved files the usual umask-based permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for file in folder.iterdir():
        os.chmod(file, 0o666 & ~umask)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
