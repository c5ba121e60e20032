"""Latency of candidate architectures before training them: `python -m benchmarks.shapes [--shape "..."]`.

Each shape is a set of `TrainConfig` model fields (`width`, `depths`, `mining_channels`,
`fuse_channels`), as `--set` takes them for `python -m training.train`; the network is built with
random weights (time does not depend on them), exported to ONNX and run by ONNX Runtime, the CPU
backend. Prints parameters, GFLOPs at 512x512 and the median milliseconds per call (W x H) at
288x384, a 3:4 portrait photo at the 384 working size, and at 512x512, all shapes timed in
interleaved rounds, and each one's time as a share of the shipped model's. Network only: the rest
of a call (resizing, upsampling) is in benchmarks/profile_call.py. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from banet import DEFAULT_MODEL, BANet, OnnxBackend, count_parameters, load_model
from banet.export import export_onnx
from training.config import TrainConfig
from training.train import new_model

from .latency import gflops, interleaved_ms

SIZES = ((384, 288), (512, 512))  # (H, W): a 3:4 portrait photo at the 384 working size, and 512x512
CANDIDATES = (  # cheaper shapes: narrower encoder, fewer stage-3 bottlenecks, fewer full-resolution channels
    "depths=1,1,6,2",
    "mining_channels=4 fuse_channels=6",
    "depths=1,1,6,2 mining_channels=4 fuse_channels=6",  # banet-64 shrunk (training/shrink.py)
    "width=48 depths=1,1,6,2 mining_channels=4 fuse_channels=6",
    "width=32",
    "width=32 depths=1,1,6,2 mining_channels=4 fuse_channels=6",
    "width=32 depths=1,1,4,1 mining_channels=4 fuse_channels=6",
)


def build_shape(fields: str) -> BANet:
    """A randomly initialised network of the shape `fields` ("width=32 depths=1,1,6,2 ...")."""
    config = TrainConfig().assigned(fields.split())
    return new_model(config).eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shapes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", action="append", metavar="FIELDS",
                        help='TrainConfig model fields, e.g. "width=32 mining_channels=4 fuse_channels=6" '
                             "(repeatable; default: a set of cheaper candidates)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved passes over every shape and size")
    parser.add_argument("--repeats", type=int, default=10, help="calls per shape, size and round")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    models = {f"shipped {DEFAULT_MODEL}": load_model(DEFAULT_MODEL)}
    try:
        models.update((shape, build_shape(shape)) for shape in args.shape or CANDIDATES)
    except ValueError as e:
        parser.error(str(e))
    runs, rows = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, model) in enumerate(models.items()):
            backend = OnnxBackend(export_onnx(model, Path(folder) / f"{index}.onnx"), threads=args.threads)
            rows[name] = count_parameters(model) / 1e6, gflops(model)
            for h, w in SIZES:
                batch = np.random.default_rng(index).random((1, 3, h, w), np.float32)
                runs[name, h, w] = lambda backend=backend, batch=batch: backend(batch)
        ms = interleaved_ms(runs, args.rounds, args.repeats)

    reference = next(iter(models))
    sizes = " | ".join(f"ms {w}x{h} | share" for h, w in SIZES)
    print(f"{platform.machine()}, {args.threads} thread(s), ONNX Runtime, batch 1; median of "
          f"{args.rounds} x {args.repeats} interleaved calls; share = of the shipped model's time\n")
    print(f"| shape | M parameters | GFLOPs at 512x512 | {sizes} |")
    print("|---|---|---|" + "---|---|" * len(SIZES))
    for name, (params, flops) in rows.items():
        times = " | ".join(f"{ms[name, h, w]:.2f} | {ms[name, h, w] / ms[reference, h, w]:.2f}" for h, w in SIZES)
        print(f"| {name} | {params:.3f} | {flops:.2f} | {times} |")


if __name__ == "__main__":
    main()
