"""What a weights folder says about itself: its model card (README.md) and the record of the
commands that made it (training.json)."""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from banet.hub import WeightsError, local_folder

from .config import TrainConfig

LICENCE = """PFCN (Shen et al., Eurographics 2016) photos come from Flickr and the benchmark is
distributed for **academic research only**; CCP (Yang et al., CVPR 2014) is Apache-2.0. Weights
trained on PFCN inherit its research-only terms: do not use them commercially."""
BACKGROUNDS_LICENCE = """People were also pasted onto person-free photos (`backgrounds/`): Poly Haven scenes
(CC0, as far as their source says), Budgie backgrounds (CC0), the Kodak suite (unrestricted), and
cubemap faces by Emil Persson (Humus), CC BY 3.0."""
CARD_FILE = "README.md"
RECORD_FILE = "training.json"  # {"stages": [the commands that made the weights, in order], ...}
LICENCE_HEADING = "## Licence of the data"
PATH_FIELDS = ("train_data", "val_data", "backgrounds", "init_weights", "teacher")  # TrainConfig fields naming folders


def shown_path(path: str) -> str:
    """A folder as a card or record names it: relative to the working directory (e.g.
    ../shared/data/ccp), so that neither names the training machine's own folders."""
    return os.path.relpath(path)


def stage_command(prog: str, argv: list[str] | None) -> str:
    """The command line a stage records: `prog` and its arguments (this process's when `argv` is None)."""
    return f"{prog} {shlex.join(sys.argv[1:] if argv is None else argv)}"


def config_record(config: TrainConfig) -> dict:
    """The config as the record beside the weights keeps it, its folders shown by `shown_path`."""
    record = json.loads(config.to_json())
    for name in PATH_FIELDS:
        value = record[name]
        record[name] = [shown_path(v) for v in value] if isinstance(value, list) else value and shown_path(value)
    return record


def training_record(folder: Path) -> dict | None:
    """The record beside a weights folder: a trained model's {"stages", "config"}, a soup's
    {"stages", "averaged", "ingredients": [its models' records]}; None if it has none."""
    record = folder / RECORD_FILE
    return json.loads(record.read_text()) if record.is_file() else None


def recorded_stages(weights: str | os.PathLike) -> list[str]:
    """The commands recorded beside a weights folder or bundled model (none if it has no record, or
    for a Hub repo id)."""
    try:
        record = training_record(local_folder(weights))
    except WeightsError:
        return []
    return record["stages"] if record else []


def licence_section(folder: Path) -> str | None:
    """The data-licence section of a weights folder's model card, if it has one."""
    card = folder / CARD_FILE
    text = card.read_text() if card.is_file() else ""
    return text.split(LICENCE_HEADING, 1)[1].strip() if LICENCE_HEADING in text else None


def _title(width: int, boundary_attention: bool) -> str:
    """The card's metadata block and heading."""
    return f"""---
library_name: banet
license: other
tags: [image-segmentation, portrait-segmentation, banet]
---
# BANet-{width}{"" if boundary_attention else " (base, no boundary attention)"}"""


def model_card(config: TrainConfig, val_iou: float | None, stages: list[str], machine: str, seconds: float) -> str:
    """The card of a finished run; `machine` and `seconds` describe its last stage."""
    data = "\n".join(f"- `{shown_path(d)}`" for d in config.train_data)
    history = "\n".join(f"- `{s}`" for s in stages)
    val = f"{100 * val_iou:.2f}" if val_iou is not None else "n/a"
    return f"""{_title(config.width, config.boundary_attention)}

Portrait segmentation with BANet (Chen et al., [arXiv 1901.03814](https://arxiv.org/abs/1901.03814)),
trained with `training/` of BANet Workbench at a {config.canvas[1]}x{config.canvas[0]} canvas
(`input_size={config.inference_size}`: the predictor resizes the long side of a photo to it, the
canvas's at the training's mean zoom).

## Training
Last stage trained on:
{data}

Commands, in order:
{history}

Last stage: {config.iterations} iterations in {seconds / 60:.0f} minutes on {machine}; batch {config.batch_size}, SGD momentum {config.momentum},
max lr {config.max_lr}, weight decay {config.weight_decay}, refine-loss weight {config.gamma}.{_distilled(config)}
Validation IoU on the held-out {100 * config.val_fraction:.0f}% of the training photos: {val}.

{LICENCE_HEADING}
{LICENCE}
{BACKGROUNDS_LICENCE if config.backgrounds else ""}
"""


def _distilled(config: TrainConfig) -> str:
    """The card's sentence on knowledge distillation, if the last stage had a teacher."""
    if not config.teacher:
        return ""
    return (f"\nDistilled from `{shown_path(config.teacher)}`: the segmentation target was the mask blended "
            f"with its confidence ({config.distill} of it).")


def soup_card(config: dict, models: list[str], stages: list[str], licences: list[str]) -> str:
    """The card of a model averaged from `models` (training.average); `config` is its config.json,
    `licences` the data-licence sections of the models' cards."""
    sources = "\n".join(f"- `{m}`" for m in models)
    history = "\n".join(f"- `{s}`" for s in stages)
    terms = "\n\n".join(dict.fromkeys(licences)) or "The data licences of the averaged models apply."
    return f"""{_title(config["width"], config["boundary_attention"])}

Portrait segmentation with BANet (Chen et al., [arXiv 1901.03814](https://arxiv.org/abs/1901.03814)),
`input_size={config["input_size"]}` (the predictor resizes the long side of a photo to it).

## Training
The mean of the weights of these models, fine-tuned from one start (a model soup, Wortsman et al.,
ICML 2022; `python -m training.average`):
{sources}

Commands, in order (each of the models' stages once, as first recorded, then the average):
{history}

{LICENCE_HEADING}
{terms}
"""
