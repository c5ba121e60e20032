"""Train BANet with the paper's recipe (§4), on CPU or CUDA, single process or under torchrun.

    python -m training.train --preset cpu-pretrain --out runs/ccp
    python -m training.train --preset cpu-finetune --out runs/pfcn --set init_weights=runs/ccp/model
    torchrun --nproc_per_node 4 -m training.train --preset paper-finetune --out runs/paper

A killed run resumes from its last checkpoint when started again with the same --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from banet import BANet, BANetLoss, BANetOutput, load_model
from banet.masks import person
from banet.metrics import foreground_iou, two_class_miou
from data_tools.atomic import atomic_path, write_text

from .card import CARD_FILE, RECORD_FILE, config_record, model_card, recorded_stages, stage_command
from .config import PRESETS, TrainConfig
from .data import (ArraySet, AugmentedSet, EpochKeys, list_entries, load_arrays, load_backgrounds, load_photos,
                   split_entries)
from .logs import plot_curves, write_csv
from .schedule import learning_rate
from .shrink import transplant

CHECKPOINT = "last.pt"
PROG = "python -m training.train"


@dataclass(frozen=True)
class Process:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_process() -> Process:
    """Join the torchrun process group when launched by torchrun; else a single process."""
    if "RANK" not in os.environ:
        return Process()
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    process = Process(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size())
    if torch.cuda.is_available():
        torch.cuda.set_device(process.local_rank)
    return process


def pick_device(process: Process) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", process.local_rank)
    return torch.device("cpu")


def new_model(config: TrainConfig) -> BANet:
    shape = dict(depths=config.depths, mining_channels=config.mining_channels, fuse_channels=config.fuse_channels)
    return BANet(width=config.width, boundary_attention=config.boundary_attention,
                 input_size=config.inference_size, **{k: v for k, v in shape.items() if v})


def load_teacher(config: TrainConfig, device: torch.device) -> BANet | None:
    """The frozen model whose confidence softens the segmentation target (knowledge distillation)."""
    if not config.teacher:
        return None
    teacher = load_model(config.teacher, device=str(device)).eval()
    teacher.requires_grad_(False)
    return teacher


def soft_target(mask: torch.Tensor, teacher_logits: torch.Tensor, distill: float) -> torch.Tensor:
    """The mask blended with the teacher's confidence; at `distill` <= 0.5 the label still decides
    which side of 0.5 every pixel's target lies on, and the teacher only says how sure to be."""
    return torch.lerp(mask, torch.sigmoid(teacher_logits), distill)


def build_model(config: TrainConfig) -> BANet:
    """A new model, initialised from `init_weights` when set (stage 2 from stage 1; a smaller shape
    keeps the trained model's first blocks and most-read channels, `training.shrink.transplant`)."""
    model = new_model(config)
    if config.init_weights:
        transplant(load_model(config.init_weights), model)
    return model


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD; weight decay on conv weights only, not on BatchNorm parameters or biases."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=config.warmup_start_lr, momentum=config.momentum)


def train_mode(model: torch.nn.Module, freeze_bn: bool) -> None:
    """Training mode; with freeze_bn, BatchNorm layers keep their running statistics (eval mode)."""
    model.train()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


@torch.no_grad()
def validate(model: BANet, val: ArraySet, device: torch.device, batch_size: int = 16) -> tuple[float, float]:
    """Mean per-image foreground IoU and two-class mIoU on the held-out canvas-size samples."""
    model.eval()
    ious, mious = [], []
    for start in range(0, len(val), batch_size):
        images = torch.from_numpy(val.images[start:start + batch_size]).to(device)
        logits = model(images.permute(0, 3, 1, 2).float() / 255).logits
        for pred, mask in zip((logits[:, 0] > 0).cpu().numpy(), val.masks[start:start + batch_size]):
            ious.append(foreground_iou(pred, person(mask)))
            mious.append(two_class_miou(pred, person(mask)))
    return float(np.mean(ious)), float(np.mean(mious))


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train(config: TrainConfig, out: Path, command: str, process: Process) -> None:
    device = pick_device(process)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    resuming = (out / CHECKPOINT).is_file()
    model = (new_model(config) if resuming else build_model(config)).to(device)
    if process.world > 1 and config.sync_bn and device.type == "cuda":  # SyncBatchNorm needs CUDA
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = make_optimizer(model, config)
    iteration, epoch, step_in_epoch, rows, elapsed = 0, 0, 0, [], 0.0
    stages = [command]
    if config.init_weights and not resuming:
        stages = recorded_stages(config.init_weights) + stages
    if resuming:
        state = torch.load(out / CHECKPOINT, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        iteration, epoch, step_in_epoch = state["iteration"], state["epoch"], state["step_in_epoch"]
        rows, elapsed, stages = state["rows"], state["elapsed"], state["stages"]
        if process.main:
            print(f"resuming {out} at iteration {iteration}", file=sys.stderr)
    net = DistributedDataParallel(model, device_ids=[process.local_rank] if device.type == "cuda" else None) \
        if process.world > 1 else model

    entries = list_entries(config.train_data, config.exclude_holdout)
    if config.val_data:
        val_entries = list_entries(config.val_data, config.exclude_holdout)
    else:
        entries, val_entries = split_entries(entries, config.val_fraction, config.seed)
    val = load_arrays(val_entries, config.canvas, desc="decode val")
    store = round(config.store_side * config.input_size)
    train_set = AugmentedSet(load_photos(entries, store, desc="decode train"),
                             load_backgrounds(config.backgrounds, store), config)
    local_batch = config.batch_size // process.world
    sampler = DistributedSampler(train_set, process.world, process.rank, shuffle=True,
                                 seed=config.seed, drop_last=True)
    if len(sampler) < local_batch:
        raise SystemExit(f"error: {len(train_set)} training samples cannot fill a batch of "
                         f"{config.batch_size} over {process.world} process(es)")
    keys = EpochKeys(sampler, local_batch, config.landscape, config.seed, epoch, step_in_epoch * local_batch)
    loader = DataLoader(train_set, local_batch, sampler=keys, num_workers=config.workers,
                        pin_memory=device.type == "cuda")
    loss_fn = BANetLoss(config.alpha, config.beta, config.gamma, config.magnitude_factor).to(device)
    teacher = load_teacher(config, device)
    autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" and config.amp else nullcontext()

    bar = tqdm(total=config.iterations, initial=iteration, unit="it", disable=not process.main)
    window: list[torch.Tensor] = []  # loss terms, read back to the CPU only when logged
    start = time.perf_counter() - elapsed
    val_iou = None
    batches = iter(loader)
    train_mode(model, config.freeze_bn)
    while iteration < config.iterations:
        image, mask, band = (t.to(device, non_blocking=True) for t in next(batches))
        lr = learning_rate(iteration, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast:
            output = net(image)
            if teacher is not None:
                with torch.no_grad():
                    mask = soft_target(mask, teacher(image).logits.float(), config.distill)
        output = BANetOutput(output.logits.float(), None if output.attention_logits is None
                             else output.attention_logits.float())
        terms = loss_fn(output, image, mask, band)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        iteration += 1
        step_in_epoch += 1
        if step_in_epoch == keys.steps_per_epoch:
            epoch, step_in_epoch = epoch + 1, 0
        if not process.main:
            continue
        window.append(torch.stack([t.detach() for t in terms]))
        bar.update()
        last = iteration == config.iterations
        if iteration % config.log_every == 0 or last:
            mean = torch.stack(window).mean(0).tolist()
            window = []
            rows.append(dict(iteration=iteration, epoch=epoch, lr=f"{lr:.6f}", loss=f"{mean[0]:.5f}",
                             segmentation=f"{mean[1]:.5f}", boundary=f"{mean[2]:.5f}",
                             refine=f"{mean[3]:.5f}", seconds=f"{time.perf_counter() - start:.1f}"))
            bar.set_postfix(loss=f"{mean[0]:.4f}", lr=f"{lr:.4f}")
            write_csv(out / "metrics.csv", rows)
        if iteration % config.eval_every == 0 or last:
            val_iou, val_miou = validate(model, val, device)
            train_mode(model, config.freeze_bn)
            if not rows or rows[-1]["iteration"] != iteration:
                rows.append(dict(iteration=iteration, epoch=epoch, lr=f"{lr:.6f}"))
            rows[-1].update(val_iou=f"{val_iou:.5f}", val_miou=f"{val_miou:.5f}")
            bar.write(f"iteration {iteration}: val IoU {100 * val_iou:.2f}  mIoU {100 * val_miou:.2f}")
            write_csv(out / "metrics.csv", rows)
            plot_curves(out / "curves.png", rows, out.name)
        if iteration % config.checkpoint_every == 0 or last:
            save_checkpoint(out / CHECKPOINT, dict(
                model=model.state_dict(), optimizer=optimizer.state_dict(), iteration=iteration,
                epoch=epoch, step_in_epoch=step_in_epoch, rows=rows, stages=stages,
                elapsed=time.perf_counter() - start))
    bar.close()
    if process.main:
        export(model, config, out, stages, val_iou, machine_name(device, process), time.perf_counter() - start)


def machine_name(device: torch.device, process: Process) -> str:
    """What trained the run, for its model card: GPUs by name, else the CPU and its cores."""
    if device.type == "cuda":
        return f"{process.world} x {torch.cuda.get_device_name(device)}"
    return f"{platform.machine()} CPU, {os.cpu_count()} cores" + (f", {process.world} processes" if process.world > 1 else "")


def export(model: BANet, config: TrainConfig, out: Path, stages: list[str], val_iou: float | None,
           machine: str, seconds: float) -> None:
    """Save the final weights as a from_pretrained folder with its model card."""
    plain = new_model(config)  # plain BatchNorm even if the run used SyncBatchNorm
    plain.load_state_dict(model.state_dict())
    folder = out / "model"
    plain.eval().cpu().save_pretrained(folder)
    write_text(folder / CARD_FILE, model_card(config, val_iou, stages, machine, seconds))
    write_text(folder / RECORD_FILE, json.dumps({"stages": stages, "config": config_record(config)}, indent=2))
    print(f"weights written to {folder}", file=sys.stderr)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Saved config of the run being resumed, else preset / --config file; then --set overrides."""
    saved = args.out / "config.json"
    if saved.is_file() and not args.restart:
        config = TrainConfig.from_json(saved.read_text())
    elif args.config:
        config = TrainConfig.from_json(Path(args.config).read_text())
    else:
        config = PRESETS[args.preset]
    return config.assigned(args.set)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu-finetune",
                        help="starting configuration (default: cpu-finetune)")
    parser.add_argument("--config", help="a config JSON file instead of a preset")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoint, metrics, weights")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="override config fields, e.g. iterations=500 input_size=192")
    parser.add_argument("--restart", action="store_true", help="discard the run's checkpoint and start over")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = stage_command(PROG, argv)
    try:
        config = resolve_config(args)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from e
    process = setup_process()
    if process.main:
        args.out.mkdir(parents=True, exist_ok=True)
        if args.restart:
            (args.out / CHECKPOINT).unlink(missing_ok=True)
        write_text(args.out / "config.json", config.to_json())
    if process.world > 1:
        dist.barrier()
    try:
        train(config, args.out, command, process)
    finally:
        if process.world > 1:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
