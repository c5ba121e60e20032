"""Average the weights of models fine-tuned from one start (a "model soup", Wortsman et al., ICML 2022):
such models often average into one that is better than each.

    python -m training.average --out runs/soup runs/a/model runs/b/model
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from banet import BANet
from banet.hub import CONFIG_FILE, load_model, local_folder
from data_tools.atomic import write_text

from .card import (CARD_FILE, RECORD_FILE, licence_section, recorded_stages, soup_card, stage_command,
                   training_record)
from .config import TrainConfig


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of state dicts of one architecture: floating-point tensors (weights, BatchNorm
    statistics) averaged, integer buffers (BatchNorm's batch counts) the largest.

    Example:
        >>> soup = average_weights([a.state_dict(), b.state_dict()])
    """
    if any(s.keys() != states[0].keys() for s in states):
        raise ValueError("models of different architectures cannot be averaged")
    mean = {}
    for key, first in states[0].items():
        stacked = torch.stack([s[key] for s in states])
        mean[key] = stacked.float().mean(0).to(first.dtype) if first.is_floating_point() else stacked.max(0).values
    return mean


def mean_input_size(sizes: list[int]) -> int:
    """A soup's working size: the mean of its models', as its weights are their mean."""
    return round(sum(sizes) / len(sizes))


def soup_config(configs: list[dict]) -> dict:
    """The config of the mean of models that share an architecture: all fields equal but the working
    size (`input_size`), which is their mean."""
    shapes = [{k: v for k, v in c.items() if k != "input_size"} for c in configs]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("the models' config.json differ: only one architecture can be averaged")
    return {**configs[0], "input_size": mean_input_size([c["input_size"] for c in configs])}


def recorded_input_size(record: dict) -> int:
    """The working size a training record implies: `TrainConfig.inference_size` of a trained
    model's config, the mean of its models' for a soup."""
    if "config" in record:
        return TrainConfig().updated(record["config"]).inference_size
    return mean_input_size([recorded_input_size(r) for r in record["ingredients"]])


def soup_stages(histories: list[list[str]], command: str) -> list[str]:
    """The commands behind a soup: each of its models' stages once, in the order first recorded (a
    model continued from another lists that one's stages too), then `command`."""
    return list(dict.fromkeys(stage for history in histories for stage in history)) + [command]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.average", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="bundled model names or model folders to average")
    parser.add_argument("--out", type=Path, required=True, help="folder for the averaged model")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("give at least two models")
    command = stage_command(parser.prog, argv)
    try:
        folders = [local_folder(m) for m in args.models]
        states = [load_model(f).state_dict() for f in folders]  # first: WeightsError names a bad folder
        config = soup_config([json.loads((f / CONFIG_FILE).read_text()) for f in folders])
        soup = BANet(**config)
        soup.load_state_dict(average_weights(states))
    except ValueError as e:  # WeightsError too
        raise SystemExit(f"error: {e}") from e
    stages = soup_stages([recorded_stages(f) for f in folders], command)
    licences = [section for f in folders if (section := licence_section(f))]
    soup.eval().save_pretrained(args.out)
    record = {"stages": stages, "averaged": args.models, "ingredients": [training_record(f) for f in folders]}
    write_text(args.out / RECORD_FILE, json.dumps(record, indent=2))
    write_text(args.out / CARD_FILE, soup_card(config, args.models, stages, licences))
    print(f"weights written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
