"""BANet and MediaPipe selfie segmentation side by side, on the same images in one run.

    python -m venv .venv-mediapipe && .venv-mediapipe/bin/pip install -r benchmarks/requirements-mediapipe.txt
    python -m benchmarks.compare --data ../shared/data/pfcn/test
    python -m benchmarks.compare --suite        # every domain of training/suite.py, ONNX Runtime vs MediaPipe

Each row: mean per-image IoU, mIoU, boundary F, Boundary IoU and gradient alignment against the
human masks, and the median wall time of one call (RGB array in, full-size mask out) on this
machine, the models taking turns over chunks of --chunk photos. MediaPipe's general model works
at 256x256; BANet at --input-size (long side), its confidence brought to the photo's size by
--upsampling (the Predictor's default, bilinear; `--upsampling bilinear guided` times both in turns).
A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from banet import DEFAULT_MODEL, Predictor, count_parameters, load_model
from banet.backends import make_backend
from banet.upsampling import UPSAMPLING
from data_tools.dataset import Dataset
from training.evaluate import (Segmenter, add_dataset_arguments, dataset_folders, format_suite_table, format_table,
                               pick_samples, score, summarize)

WORKER = Path(__file__).with_name("mediapipe_worker.py")
MEDIAPIPE_MODELS = {0: "general 256x256", 1: "landscape 144x256"}


Calls = list[tuple[np.ndarray, float]]  # (mask, seconds) per sample, in order


def banet_calls(predictor: Predictor, dataset: Dataset, samples: list) -> Calls:
    """One call after another, as the MediaPipe worker runs: photo read, call timed, mask kept.
    (Scoring between calls would leave each call to start on cold caches.)"""
    calls = []
    for sample in samples:
        rgb = dataset.read_image(sample)
        start = time.perf_counter()
        mask = predictor(rgb).mask
        calls.append((mask, time.perf_counter() - start))
    return calls


def mediapipe_calls(python: Path, dataset: Dataset, samples: list, model: int, work: Path) -> tuple[Calls, str]:
    """Run the worker over the samples; its masks and timings, and MediaPipe's version."""
    work.mkdir()
    paths = [str(dataset.image_path(s).resolve()) for s in samples]
    result = subprocess.run([str(python), str(WORKER), str(work), str(model)], input=json.dumps(paths),
                            capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"MediaPipe worker failed:\n{result.stderr[-2000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    masks = [cv2.imread(str(work / f"{i}.png"), cv2.IMREAD_GRAYSCALE) >= 128 for i in range(len(samples))]
    return list(zip(masks, report["seconds"])), report["version"]


def replay(calls: Calls) -> Segmenter:
    """A segmenter handing back recorded calls in order (score() reads the samples in that order)."""
    queue = iter(calls)
    return lambda rgb: next(queue)


def take_turns(runners: dict[str, Callable[[list], Calls]], samples: list, chunk: int, label: str) -> dict[str, Calls]:
    """Each runner's calls on all samples, the runners taking turns over chunks of `chunk` samples,
    so that a slow spell of a shared machine falls on every runner alike."""
    calls: dict[str, Calls] = {name: [] for name in runners}
    for start in tqdm(range(0, len(samples), chunk), desc=f"{label} calls", leave=False):
        for name, run in runners.items():
            calls[name] += run(samples[start:start + chunk])
    return calls


def compare(dataset: Dataset, samples: list, domain: str, predictors: dict[str, Predictor], params: int,
            args: argparse.Namespace, work: Path) -> list[dict]:
    """Summaries of each BANet predictor (by backend name) and of MediaPipe on the samples."""
    runners: dict[str, Callable[[list], Calls]] = {
        f"BANet ({args.weights}, {backend})": partial(banet_calls, predictor, dataset)
        for backend, predictor in predictors.items()}
    versions = []
    if args.mediapipe_python.is_file():
        def mediapipe(chunk: list) -> Calls:
            done, version = mediapipe_calls(args.mediapipe_python, dataset, chunk, args.mediapipe_model,
                                            work / f"mediapipe-{domain}-{len(versions)}")
            versions.append(version)
            return done

        runners["MediaPipe"] = mediapipe
    calls = take_turns(runners, samples, args.chunk, domain)
    summaries = []
    for backend, predictor in predictors.items():
        name = f"BANet ({args.weights}, {backend})"
        rows = score(replay(calls[name]), dataset, samples, f"{domain} {name}")
        summaries.append({"domain": domain, **summarize(name, rows, params, f"{predictor.input_size} long side")})
    if versions:
        name = f"MediaPipe selfie {versions[0]}"
        rows = score(replay(calls["MediaPipe"]), dataset, samples, f"{domain} {name}")
        summaries.append({"domain": domain, **summarize(name, rows, None, MEDIAPIPE_MODELS[args.mediapipe_model])})
    return summaries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    parser.add_argument("--weights", default=DEFAULT_MODEL)
    parser.add_argument("--input-size", type=int, help="BANet long side (default: the weights')")
    parser.add_argument("--upsampling", nargs="+", choices=UPSAMPLING, default=[UPSAMPLING[0]],
                        help="the Predictor's upsampling of the confidence; several: one ONNX Runtime row each")
    parser.add_argument("--mediapipe-python", type=Path, default=Path(".venv-mediapipe/bin/python"))
    parser.add_argument("--mediapipe-model", type=int, choices=sorted(MEDIAPIPE_MODELS), default=0)
    parser.add_argument("--limit", type=int, help="only the first N images of each dataset")
    parser.add_argument("--chunk", type=int, default=25, help="photos per turn when the models take turns")
    parser.add_argument("--threads", type=int, default=2, help="torch / ONNX Runtime threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    domains = dataset_folders(args)
    model = load_model(args.weights)
    summaries, images = [], 0
    if not args.mediapipe_python.is_file():
        print(f"(MediaPipe skipped: no {args.mediapipe_python}; see this script's --help)")
    with tempfile.TemporaryDirectory() as tmp:
        onnx = make_backend(model, "onnxruntime", "cpu", args.threads)
        predictors = {f"ONNX Runtime, {way}": Predictor(onnx, input_size=args.input_size, batch_size=1, upsampling=way)
                      for way in args.upsampling}
        if not args.suite:  # the suite's rows: ONNX Runtime only (PyTorch gives the same masks)
            predictors[f"PyTorch, {args.upsampling[0]}"] = Predictor(
                model, device="cpu", backend="torch", input_size=args.input_size, batch_size=1,
                upsampling=args.upsampling[0])
        for domain, folder in domains.items():
            dataset = Dataset.open(folder)
            samples = pick_samples(dataset, args.limit)
            images += len(samples)
            summaries += compare(dataset, samples, domain, predictors, count_parameters(model), args, Path(tmp))
    source = "the evaluation suite" if args.suite else args.data
    print(f"{images} images from {source}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, {args.threads} threads; ms = median wall time per call")
    print(format_suite_table(summaries) if args.suite else format_table(summaries))


if __name__ == "__main__":
    main()
