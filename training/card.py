"""Model card (README.md in the weights folder) for a trained run."""
from __future__ import annotations

import os

from .config import TrainConfig

LICENCE = """PFCN (Shen et al., Eurographics 2016) photos come from Flickr and the benchmark is
distributed for **academic research only**; CCP (Yang et al., CVPR 2014) is Apache-2.0. Weights
trained on PFCN inherit its research-only terms: do not use them commercially."""
BACKGROUNDS_LICENCE = """People were also pasted onto person-free photos (`backgrounds/`): Poly Haven scenes
(CC0, as far as their source says), Budgie backgrounds (CC0), the Kodak suite (unrestricted), and
cubemap faces by Emil Persson (Humus), CC BY 3.0."""


def model_card(config: TrainConfig, val_iou: float | None, stages: list[str], machine: str, seconds: float) -> str:
    """The card of a finished run; `machine` and `seconds` describe its last stage."""
    data = "\n".join(f"- `{os.path.relpath(d)}`" for d in config.train_data)
    history = "\n".join(f"- `{s}`" for s in stages)
    val = f"{100 * val_iou:.2f}" if val_iou is not None else "n/a"
    return f"""---
library_name: banet
license: other
tags: [image-segmentation, portrait-segmentation, banet]
---
# BANet-{config.width}{"" if config.boundary_attention else " (base, no boundary attention)"}

Portrait segmentation with BANet (Chen et al., [arXiv 1901.03814](https://arxiv.org/abs/1901.03814)),
trained with `training/` of BANet Workbench at a {config.canvas[1]}x{config.canvas[0]} canvas
(`input_size={config.input_size}`: the predictor resizes the long side of a photo to it).

## Training
Last stage trained on:
{data}

Commands, in order:
{history}

Last stage: {config.iterations} iterations in {seconds / 60:.0f} minutes on {machine}; batch {config.batch_size}, SGD momentum {config.momentum},
max lr {config.max_lr}, weight decay {config.weight_decay}, refine-loss weight {config.gamma}.
Validation IoU on the held-out {100 * config.val_fraction:.0f}% of the training photos: {val}.

## Licence of the data
{LICENCE}
{BACKGROUNDS_LICENCE if config.backgrounds else ""}
"""
