"""Refinement of coarse annotations: the project's method against the classic tools, on the same band.

    python -m benchmarks.refine                       # PFCN test and the held-out CCP photos
    python -m benchmarks.refine --limit 50 --domain ccp-full --list-worse   # + ids of photos made worse
    python -m benchmarks.refine --data ../shared/data/pfcn/train --limit 40 --method "guided matting (this project)"
                                                      # development photos, for choosing parameters

Coarse annotations are made from the true masks (benchmarks/coarse.py: polygon, blocky, soft).
Every method works in the same band, the one data_tools.refine chooses (band_for: W = 50 scaled to
the person, wider for a quick polygon).
Rows: the coarse input; the model alone; the project's guided matting (data_tools.refine.refine);
OpenCV GrabCut (5 iterations, band = probable, outside = sure); pymatting's closed-form matting
(trimap: band unknown). Columns: mean IoU, boundary F (2 px), Boundary IoU, the share of
annotations made worse by more than 0.5 IoU, seconds per photo. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from pymatting import estimate_alpha_cf
from tqdm import tqdm

from banet import DEFAULT_MODEL, Predictor, load_model
from banet.masks import as_bool, person
from banet.metrics import boundary_f_score, boundary_iou, foreground_iou
from banet.targets import edge_band
from data_tools.dataset import Dataset, Sample
from data_tools.matting import quiet_ichol
from data_tools.refine import band_for, refine
from training.evaluate import pick_samples
from training.suite import DEFAULT_SUITE_DIR, build_suite

from .coarse import KINDS

DOMAINS = ("pfcn-test", "ccp-full")
WORSE = 0.005  # "made worse": IoU more than 0.5 points below the coarse input's
Method = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (rgb, coarse, confidence, band) -> bool


def grabcut(rgb: np.ndarray, coarse: np.ndarray, confidence: np.ndarray, band: np.ndarray) -> np.ndarray:
    labels = np.where(coarse, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
    labels[band] = np.where(coarse[band], cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    models = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), labels, None, *models, 5, cv2.GC_INIT_WITH_MASK)
    return np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))


def closed_form(rgb: np.ndarray, coarse: np.ndarray, confidence: np.ndarray, band: np.ndarray) -> np.ndarray:
    trimap = np.where(band, 0.5, coarse.astype(np.float64))
    return estimate_alpha_cf(rgb / 255.0, trimap, preconditioner=quiet_ichol) > 0.5


def guided(rgb: np.ndarray, coarse: np.ndarray, confidence: np.ndarray, band: np.ndarray) -> np.ndarray:
    return person(refine(rgb, coarse, confidence).mask)


PROJECT = "guided matting (this project)"
METHODS: dict[str, Method] = {
    "coarse input": lambda rgb, coarse, confidence, band: coarse,
    "model alone": lambda rgb, coarse, confidence, band: confidence >= 0.5,
    PROJECT: guided,
    "GrabCut, 5 iterations": grabcut,
    "closed-form matting (pymatting)": closed_form,
}
GUIDED = ("model alone", PROJECT)  # their time includes the model's call


def score_photo(dataset: Dataset, sample: Sample, index: int, predictor: Predictor,
                methods: dict[str, Method] = METHODS) -> dict:
    """(kind, method) -> this photo's row (iou, boundary F, boundary IoU, worse, seconds)."""
    rows = {}
    rgb, truth = dataset.read_image(sample), person(dataset.read_mask(sample))
    start = time.perf_counter()
    confidence = predictor(rgb).confidence
    model_seconds = time.perf_counter() - start
    for kind, coarsen in KINDS.items():
        rng = np.random.default_rng([index, *kind.encode()])
        coarse = as_bool(coarsen(truth.astype(np.uint8) * 255, rng))
        band = edge_band(coarse, band_for(coarse, confidence))  # the band refine() works in
        base = foreground_iou(coarse, truth)
        for method, run in methods.items():
            start = time.perf_counter()
            out = run(rgb, coarse, confidence, band)
            seconds = time.perf_counter() - start + (model_seconds if method in GUIDED else 0.0)
            iou = foreground_iou(out, truth)
            rows[kind, method] = (iou, boundary_f_score(out, truth), boundary_iou(out, truth), iou < base - WORSE, seconds)
    return rows


_worker: dict = {}


def _start_worker(weights: str, threads: int, folder: Path, methods: list[str]) -> None:
    torch.set_num_threads(threads)
    chosen = {name: METHODS[name] for name in methods}
    _worker.update(predictor=Predictor(load_model(weights), device="cpu"), dataset=Dataset.open(folder),
                   methods=chosen)
    rgb, square = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8), np.zeros((64, 64), bool)
    square[16:48, 16:48] = True
    for run in chosen.values():  # loads numba's compiled kernels before anything is timed
        run(rgb, square, square.astype(np.float32), edge_band(square, 9))


def _score(job: tuple[int, str]) -> tuple[str, dict]:
    index, sample_id = job
    return sample_id, score_photo(_worker["dataset"], _worker["dataset"][sample_id], index, _worker["predictor"],
                                  _worker["methods"])


def score_domain(folder: Path, args: argparse.Namespace, name: str) -> tuple[dict, dict]:
    """(kind, method) -> per-photo rows, and (kind, method) -> ids of the photos made worse; photos
    shared among `args.workers` processes."""
    samples = pick_samples(Dataset.open(folder), args.limit)
    jobs = [(index, sample.id) for index, sample in enumerate(samples)]
    rows: dict[tuple[str, str], list[tuple]] = {}
    worse: dict[tuple[str, str], list[str]] = {}
    with multiprocessing.get_context("fork").Pool(args.workers, _start_worker,
                                                  (args.weights, args.threads, folder, args.method)) as pool:
        for sample_id, photo in tqdm(pool.imap(_score, jobs), total=len(jobs), desc=name, unit="img"):
            for key, row in photo.items():
                rows.setdefault(key, []).append(row)
                if row[3]:
                    worse.setdefault(key, []).append(sample_id)
    return rows, worse


def format_table(domain: str, count: int, rows: dict) -> str:
    lines = [f"\n{domain} ({count} photos)\n",
             "| coarse kind | method | IoU | boundary F | Boundary IoU | made worse | s / photo |",
             "|---|---|---|---|---|---|---|"]
    for (kind, method), values in rows.items():
        a = np.array(values, float)
        worse = "–" if method == "coarse input" else f"{100 * a[:, 3].mean():.1f}%"
        seconds = "–" if method == "coarse input" else f"{a[:, 4].mean():.2f}"
        lines.append(f"| {kind} | {method} | {100 * a[:, 0].mean():.2f} | {100 * a[:, 1].mean():.2f} | "
                     f"{100 * a[:, 2].mean():.2f} | {worse} | {seconds} |")
    return "\n".join(lines)


def format_worse(method: str, worse: dict) -> str:
    """The ids of the photos `method` made worse, per coarse kind: the ones to look at."""
    lines = [f"\nmade worse by {method}:"]
    lines += [f"  {kind}: {', '.join(ids)}" for (kind, name), ids in worse.items() if name == method]
    return "\n".join(lines if len(lines) > 1 else [lines[0] + " none"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.refine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=DEFAULT_MODEL, help="the model that guides the project's method")
    parser.add_argument("--domain", action="append", choices=DOMAINS, help="default: both (unless --data)")
    parser.add_argument("--data", type=Path, action="append", default=[],
                        help="also (or only) this images/ + masks/ folder, e.g. development photos")
    parser.add_argument("--method", action="append", choices=list(METHODS),
                        help="only these methods (repeatable; default all)")
    parser.add_argument("--suite", default=DEFAULT_SUITE_DIR, help="where the evaluation suite is built")
    parser.add_argument("--limit", type=int, help="only the first N photos of each domain")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the photos (times then overlap)")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads per process")
    parser.add_argument("--list-worse", action="store_true",
                        help="after each table, the ids of the photos the project's method made worse")
    args = parser.parse_args(argv)
    args.method = args.method or list(METHODS)
    folders = {f"{d.parent.name}/{d.name}": d for d in args.data}
    if args.domain or not args.data:
        suite = build_suite(args.suite)
        folders.update({d: suite[d] for d in args.domain or DOMAINS})
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.workers} process(es) x "
          f"{args.threads} thread(s); model {args.weights}; made worse = IoU more than {100 * WORSE:.1f} below the "
          "coarse input's")
    for domain, folder in folders.items():
        rows, worse = score_domain(folder, args, domain)
        print(format_table(domain, len(next(iter(rows.values()))), rows), flush=True)
        if args.list_worse:
            print(format_worse(PROJECT, worse), flush=True)


if __name__ == "__main__":
    main()
