"""Where one Predictor call spends its time, stage by stage: `python -m benchmarks.profile_call [PHOTO]`.

Times each stage of `Predictor.__call__` with the same functions it uses (decoding, shrinking,
batch preparation, the network, upsampling), then the whole call from an array and from a file,
on the default backend, and the Sobel fields a result computes when read (Inspect's two gradient
panels, the gradient-alignment metric); stages are timed in interleaved rounds. PHOTO defaults to matplotlib's grace_hopper.jpg
(512x600). A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable
from pathlib import Path

import matplotlib.cbook
import torch

from banet import DEFAULT_MODEL, Predictor, load_model, load_rgb
from banet.image_io import working_size
from banet.predictor import prepare_batch, shrink
from banet.upsampling import GuidedFilter, guided_upsample, upsample

from .latency import interleaved_ms


def stages(predictor: Predictor, photo: Path) -> dict[str, Callable[[], object]]:
    """Stage name -> a zero-argument call doing that stage on `photo`."""
    rgb = load_rgb(photo)
    size = working_size(*rgb.shape[:2], predictor.input_size)
    batch = prepare_batch([rgb], size)
    confidence, attention = predictor.backend(batch)
    h, w = size
    guided = Predictor(predictor.backend, input_size=predictor.input_size, batch_size=1, upsampling="guided")
    shrunk = shrink(rgb, size)
    result = predictor(rgb)
    return {
        "decode the file (load_rgb)": lambda: load_rgb(photo),
        "shrink to the working size": lambda: shrink(rgb, size),
        "prepare the batch (shrink, pad, scale)": lambda: prepare_batch([rgb], size),
        f"network ({predictor.backend.name})": lambda: predictor.backend(batch),
        "upsample the confidence, bilinear (the default)": lambda: upsample(confidence[0, 0, :h, :w], rgb.shape[:2]),
        "upsample the confidence, guided":
            lambda: guided_upsample(confidence[0, 0, :h, :w], shrunk, rgb, GuidedFilter()),
        "upsample the attention (only if read)": lambda: upsample(attention[0, 0, :h, :w], rgb.shape[:2]),
        "whole call, array in, mask out": lambda: predictor(rgb).mask,
        "whole call, array in, mask out, guided upsampling": lambda: guided(rgb).mask,
        "whole call, file in, mask out": lambda: predictor(photo).mask,
        "Sobel field of the photo (read: image_gradient)": lambda: result.image_gradient,
        "Sobel field of the confidence (read: prediction_gradient)": lambda: result.prediction_gradient,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_call", description=__doc__)
    parser.add_argument("photo", nargs="?", type=Path,
                        default=Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    parser.add_argument("--weights", default=DEFAULT_MODEL)
    parser.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "torch"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved passes over the stages")
    parser.add_argument("--repeats", type=int, default=20, help="calls per stage and round")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    predictor = Predictor(load_model(args.weights), backend=args.backend, batch_size=1)
    rgb = load_rgb(args.photo)
    h, w = working_size(*rgb.shape[:2], predictor.input_size)
    print(f"{args.photo.name} ({rgb.shape[1]}x{rgb.shape[0]}), working size {w}x{h}, {args.weights}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
          f"median of {args.rounds} x {args.repeats} interleaved runs\n")
    print("| stage | ms |\n|---|---|")
    for name, ms in interleaved_ms(stages(predictor, args.photo), args.rounds, args.repeats).items():
        print(f"| {name} | {ms:.2f} |")


if __name__ == "__main__":
    main()
