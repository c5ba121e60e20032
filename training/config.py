"""Training configuration: every recipe value is a field; presets give the paper's runs."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

DATA_ROOT = Path(os.environ.get("BANET_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared(*parts: str) -> str:
    return str(DATA_ROOT.joinpath(*parts))


@dataclass(frozen=True)
class TrainConfig:
    # data: dataset folders (the data_tools format, or images/ + masks/ folders)
    train_data: tuple[str, ...] = ()
    val_data: tuple[str, ...] = ()  # empty: hold out val_fraction of the training samples
    val_fraction: float = 0.05
    # model
    width: int = 64
    boundary_attention: bool = True
    input_size: int = 224  # training canvas height (the long side of a portrait)
    aspect: float = 0.75  # canvas width / height; photos are scaled to cover it, then centre-cropped
    init_weights: str | None = None  # stage 2 starts from stage 1's model folder
    freeze_bn: bool = False  # keep BatchNorm running statistics fixed: for fine-tuning on a few photos
    # loss (paper §3.3); gamma=0 is the pretraining stage without refine loss
    alpha: float = 0.6
    beta: float = 0.3
    gamma: float = 0.1
    magnitude_factor: float = 1.5
    band_width: float = 50.0  # W
    # optimisation (paper §4: SGD, momentum 0.9, warm-up to lr 0.1, batch 16)
    iterations: int = 20000
    batch_size: int = 16  # global, split over torchrun processes
    max_lr: float = 0.1
    warmup_iterations: int = 500
    warmup_start_lr: float = 0.001
    lr_power: float = 0.9  # poly decay after warm-up (the paper names no decay rule; poly is our choice)
    momentum: float = 0.9
    weight_decay: float = 5e-4  # the paper gives no value; 5e-4 is the usual SGD choice
    # online augmentation (paper §4)
    rotation: float = 45.0  # degrees, uniform in [-rotation, rotation]
    flip: float = 0.5
    lightness: tuple[float, float] = (0.7, 1.3)
    border: str = "reflect"  # how rotation fills corners: reflect or constant (black, background)
    # bookkeeping
    seed: int = 0
    log_every: int = 20
    eval_every: int = 250
    checkpoint_every: int = 250
    workers: int = 0  # DataLoader processes; 0 keeps the 2-core CPU for the model
    threads: int = 0  # torch CPU threads; 0 = torch's default
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on CPU)
    sync_bn: bool = True  # SyncBatchNorm under torchrun on CUDA

    @property
    def canvas(self) -> tuple[int, int]:
        """(height, width) of the training crops."""
        return self.input_size, max(32, round(self.input_size * self.aspect))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls().updated(json.loads(text))

    def updated(self, values: dict) -> TrainConfig:
        """A copy with some fields changed; values may be strings (from the command line)."""
        known = {f.name: f for f in fields(self)}
        changes = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown config field {name!r}; fields: {', '.join(known)}")
            changes[name] = _coerce(getattr(self, name), value, name)
        return replace(self, **changes)


def _coerce(current: object, value: object, name: str) -> object:
    """Parse a command-line string into the type of the field's current value."""
    if not isinstance(value, str):
        return tuple(value) if isinstance(value, list) else value
    try:
        if isinstance(current, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if isinstance(current, tuple):
            items = [v for v in value.split(",") if v]
            return tuple(type(current[0])(v) for v in items) if current else tuple(items)
        if current is None:
            return None if value.lower() in ("", "none") else value
        return type(current)(value)
    except ValueError as e:
        raise ValueError(f"{name}: cannot read {value!r} as {type(current).__name__}") from e


PFCN_TRAIN = (shared("pfcn", "train"), shared("pfcn", "extra"))

# The paper's schedule, for a GPU (stage 1 then stage 2 with --set init_weights=<stage 1>/model).
PAPER_PRETRAIN = TrainConfig(train_data=(shared("ccp"),), gamma=0.0, iterations=20000)
PAPER_FINETUNE = TrainConfig(train_data=PFCN_TRAIN, iterations=20000)
# The shipped model: the recipe at a 256x192 canvas, 8k + 15k iterations, about 15 minutes on one H100.
GPU_PRETRAIN = replace(PAPER_PRETRAIN, input_size=256, iterations=8000, workers=12)
GPU_FINETUNE = replace(PAPER_FINETUNE, input_size=256, iterations=15000, workers=12)
# The same recipe shortened to train in about 1.5 hours on 2 CPU cores.
CPU_PRETRAIN = replace(PAPER_PRETRAIN, input_size=256, iterations=1000, warmup_iterations=100)
CPU_FINETUNE = replace(PAPER_FINETUNE, input_size=256, iterations=4000, warmup_iterations=100)
# Table 3 ablation: three variants, trained identically on PFCN alone, short and small.
ABLATION = TrainConfig(train_data=PFCN_TRAIN, input_size=192, iterations=800, warmup_iterations=50,
                       eval_every=200, checkpoint_every=200)

PRESETS: dict[str, TrainConfig] = {
    "paper-pretrain": PAPER_PRETRAIN,
    "paper-finetune": PAPER_FINETUNE,
    "gpu-pretrain": GPU_PRETRAIN,
    "gpu-finetune": GPU_FINETUNE,
    "cpu-pretrain": CPU_PRETRAIN,
    "cpu-finetune": CPU_FINETUNE,
    "ablation-base": replace(ABLATION, boundary_attention=False, beta=0.0, gamma=0.0),
    "ablation-attention": replace(ABLATION, gamma=0.0),
    "ablation-refine": ABLATION,
}
