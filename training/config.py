"""Training configuration: every recipe value is a field; presets give the paper's runs."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from banet.hub import BUNDLED_DIR

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
    depths: tuple[int, ...] = ()  # bottlenecks per encoder stage; () = BANet's default
    mining_channels: int = 0  # boundary feature mining channels; 0 = BANet's default
    fuse_channels: int = 0  # fusion channels (mining + semantic); 0 = BANet's default
    boundary_attention: bool = True
    input_size: int = 224  # training canvas height (the long side of a portrait)
    aspect: float = 0.75  # canvas width / height; photos are scaled to cover it, then centre-cropped
    init_weights: str | None = None  # stage 2 starts from stage 1's model folder
    freeze_bn: bool = False  # keep BatchNorm running statistics fixed: for fine-tuning on a few photos
    teacher: str | None = None  # a trained model (name or folder) whose confidence the segmentation target blends in
    distill: float = 0.5  # with a teacher: target = (1 - distill) x mask + distill x the teacher's confidence
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
    # people recipe: data mix, framing, compositing, jitter (training/data.py); the defaults are off
    source_weights: tuple[float, ...] = ()  # chance of drawing from each train_data folder; () = uniform over photos
    exclude_holdout: bool = True  # leave out training/holdout.json's CCP ids (the evaluation suite's photos)
    backgrounds: str | None = None  # person-free photos for pasted people and empty samples (held-out scenes left out)
    store_side: float = 1.0  # photos kept in memory with their long side at store_side x input_size
    zoom: tuple[float, float] = (1.0, 1.0)  # framed photos: the covering crop shrunk by this, at a random place
    p_upper: float = 0.0  # chance of an upper-body crop: the top `upper` share of the person's height
    upper: tuple[float, float] = (0.3, 0.7)
    p_paste: float = 0.0  # chance of people pasted onto a background photo
    person_height: tuple[float, float] = (0.1, 1.0)  # pasted person height / canvas height, log-uniform
    p_group: float = 0.0  # share of pasted samples with 2 to max_people people
    max_people: int = 3
    p_empty: float = 0.0  # chance of a background crop with no person
    landscape: float = 0.0  # share of batches on the landscape canvas (height and width swapped)
    saturation: tuple[float, float] = (1.0, 1.0)  # HLS saturation factor
    hue: float = 0.0  # hue shift, degrees, uniform in [-hue, hue]
    p_blur: float = 0.0  # Gaussian blur, sigma 0.4-1.5 px
    p_noise: float = 0.0  # Gaussian noise, std up to `noise` (of 255)
    noise: float = 8.0
    p_jpeg: float = 0.0  # JPEG re-encoding at a quality within jpeg_quality
    jpeg_quality: tuple[int, int] = (30, 90)
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

    @property
    def inference_size(self) -> int:
        """Long side the trained model's Predictor resizes photos to: the canvas's at the mean zoom,
        the scale at which training showed framed photos on average (zoom is drawn uniformly)."""
        return round(self.input_size * (self.zoom[0] + self.zoom[1]) / 2)

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
            changes[name] = _coerce(getattr(self, name), value, name, str(known[name].type))
        return replace(self, **changes)

    def assigned(self, items: Iterable[str]) -> TrainConfig:
        """A copy with `FIELD=VALUE` strings applied, as `--set` takes them."""
        items = list(items)
        bad = [item for item in items if "=" not in item]
        if bad:
            raise ValueError(f"expected FIELD=VALUE, got {bad[0]!r}")
        return self.updated(dict(item.split("=", 1) for item in items))


def _item_type(annotation: str) -> type:
    """Element type of a tuple field from its annotation, e.g. 'tuple[float, ...]' -> float."""
    return next((t for t in (float, int) if f"[{t.__name__}" in annotation), str)


def _coerce(current: object, value: object, name: str, annotation: str) -> object:
    """Parse a command-line string into the type of the field."""
    if not isinstance(value, str):
        return tuple(value) if isinstance(value, list) else value
    try:
        if isinstance(current, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if isinstance(current, tuple):
            return tuple(_item_type(annotation)(v) for v in value.split(",") if v)
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
# The people recipe, in four groups of fields (each one a row of the README's ablation):
MIX = dict(train_data=PFCN_TRAIN + (shared("ccp"),), source_weights=(0.48, 0.02, 0.5))  # PFCN and CCP together
FRAMING = dict(zoom=(1.0, 1.5), p_upper=0.2, landscape=0.4)  # zoomed and upper-body crops, landscape canvases
PASTE = dict(backgrounds=shared("backgrounds"), p_paste=0.4, p_group=0.35, p_empty=0.08)  # people 10-100% tall, groups, no one
JITTER = dict(saturation=(0.7, 1.3), hue=10.0, p_blur=0.2, p_noise=0.2, p_jpeg=0.3)  # colour, blur, noise, JPEG
PEOPLE = TrainConfig(**MIX, **FRAMING, **PASTE, **JITTER, store_side=2.0, input_size=256)
# The people recipe as a third stage on the PFCN model (banet-64-pfcn, the two GPU stages above),
# short enough for 2 CPU cores (62 minutes); max lr 0.02 because it starts from trained weights.
CPU_PEOPLE = replace(PEOPLE, init_weights=str(BUNDLED_DIR / "banet-64-pfcn"), iterations=4000,
                     warmup_iterations=200, max_lr=0.02, eval_every=500, checkpoint_every=100)
# Shipped banet-64: the same stage 2.25x longer on a GPU (6 minutes on one H200, two runs side by
# side); 6 loader processes each, so two runs share a 16-core machine.
GPU_PEOPLE = replace(CPU_PEOPLE, iterations=9000, warmup_iterations=300, workers=6, eval_every=1000,
                     checkpoint_every=500)
# The people recipe's late phase, milder: people's photos are mostly upright and clean, so less
# rotation, fewer and larger pasted people and half the jitter. The shipped banet-64 ends with
# 11,000 iterations of it from the previous banet-64, then 5,000 more at max lr 0.005 (README).
MILD = dict(rotation=15.0, p_paste=0.3, person_height=(0.15, 1.0), p_blur=0.1, p_noise=0.1, p_jpeg=0.15)
GPU_PEOPLE_MILD = replace(GPU_PEOPLE, **MILD, iterations=11000, max_lr=0.01)
# The recipe's ablation: from banet-64-pfcn, 600 iterations at 192, adding one group of fields at a time.
PEOPLE_STEP = TrainConfig(train_data=PFCN_TRAIN, init_weights=CPU_PEOPLE.init_weights, store_side=2.0,
                          input_size=192, iterations=600, warmup_iterations=50, max_lr=0.02, eval_every=300,
                          checkpoint_every=300)
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
    "cpu-people": CPU_PEOPLE,
    "gpu-people": GPU_PEOPLE,
    "gpu-people-mild": GPU_PEOPLE_MILD,
    "people-pfcn": PEOPLE_STEP,
    "people-mix": replace(PEOPLE_STEP, **MIX),
    "people-framing": replace(PEOPLE_STEP, **MIX, **FRAMING),
    "people-paste": replace(PEOPLE_STEP, **MIX, **FRAMING, **PASTE),
    "people-jitter": replace(PEOPLE_STEP, **MIX, **FRAMING, **PASTE, **JITTER),
    "ablation-base": replace(ABLATION, boundary_attention=False, beta=0.0, gamma=0.0),
    "ablation-attention": replace(ABLATION, gamma=0.0),
    "ablation-refine": ABLATION,
}
