"""Evaluate weights on a dataset: mean per-image IoU, two-class mIoU, boundary F, Boundary IoU,
gradient alignment, false-positive area, parameters and latency; prints a table and writes it
(markdown, JSON, CSV). With --suite, on every domain of the evaluation suite (training/suite.py).

    python -m training.evaluate --weights banet-64 --data ../shared/data/pfcn/test
    python -m training.evaluate --weights runs/ablation-*/model --data ../shared/data/pfcn/test --out results/ablation
    python -m training.evaluate --weights banet-64 banet-64-pfcn --suite
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from banet import DEFAULT_MODEL, Predictor, WeightsError, count_parameters, load_model
from banet.backends import make_backend
from banet.masks import person
from banet.metrics import evaluate_pair, false_positive_area
from banet.upsampling import UPSAMPLING
from data_tools.atomic import write_text
from data_tools.dataset import Dataset, DatasetError, Sample

from .suite import DEFAULT_SUITE_DIR, build_suite

METRICS = ("iou", "miou", "boundary_f", "boundary_iou", "gradient_alignment", "false_positive")
HEADERS = {"iou": "IoU", "miou": "mIoU", "boundary_f": "boundary F", "boundary_iou": "Boundary IoU",
           "gradient_alignment": "grad. align.", "false_positive": "FP area %"}
SUITE_METRICS = ("iou", "boundary_f", "boundary_iou", "gradient_alignment", "false_positive")

# A segmenter: RGB uint8 (H,W,3) -> (bool mask (H,W), seconds of model time)
Segmenter = Callable[[np.ndarray], tuple[np.ndarray, float]]


def banet_segmenter(predictor: Predictor) -> Segmenter:
    def run(rgb: np.ndarray) -> tuple[np.ndarray, float]:
        prediction = predictor(rgb)
        return prediction.mask, prediction.seconds

    return run


def score(segment: Segmenter, dataset: Dataset, samples: Sequence[Sample], name: str) -> list[dict]:
    """Per-image metrics and model time (ms) of one segmenter on the samples."""
    rows = []
    for sample in tqdm(samples, desc=name, unit="img", leave=False):
        rgb = dataset.read_image(sample)
        gt = person(dataset.read_mask(sample))
        mask, seconds = segment(rgb)
        scores = evaluate_pair(mask, gt, rgb)
        if not gt.any():  # no person: no edge to align with
            scores["gradient_alignment"] = float("nan")
        rows.append({"id": sample.id, **scores, "false_positive": false_positive_area(mask, gt), "ms": 1000 * seconds})
    return rows


def _mean(values: list[float]) -> float:
    """Mean over the images where the metric is defined (NaN: not defined for that image)."""
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _percent(value: float) -> str:
    return "–" if np.isnan(value) else f"{100 * value:.2f}"


def summarize(name: str, rows: list[dict], params: int | None, input_size: str) -> dict:
    summary = {"model": name, "images": len(rows), "input": input_size,
               **{m: _mean([r[m] for r in rows]) for m in METRICS},
               "ms": float(np.median([r["ms"] for r in rows[1:] or rows])),  # first call warms up
               "params_m": None if params is None else params / 1e6}
    summary["fps"] = 1000.0 / summary["ms"] if summary["ms"] else None
    return summary


def format_table(summaries: list[dict]) -> str:
    head = ["model", "images", "input"] + [HEADERS[m] for m in METRICS] + ["params (M)", "ms / image", "fps"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [s["model"], str(s["images"]), s["input"]] + [_percent(s[m]) for m in METRICS]
        cells += ["n/a" if s["params_m"] is None else f"{s['params_m']:.3f}", f"{s['ms']:.1f}",
                  "n/a" if s["fps"] is None else f"{s['fps']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_suite_table(summaries: list[dict]) -> str:
    """One row per (domain, model); summaries carry a "domain" key."""
    head = ["domain", "model", "images"] + [HEADERS[m] for m in SUITE_METRICS] + ["ms / image"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [s["domain"], s["model"], str(s["images"])] + [_percent(s[m]) for m in SUITE_METRICS]
        lines.append("| " + " | ".join(cells + [f"{s['ms']:.1f}"]) + " |")
    return "\n".join(lines)


def write_results(out: Path, summaries: list[dict], per_image: dict[str, list[dict]],
                  table: Callable[[list[dict]], str] = format_table) -> None:
    """table.md, summary.json and one per-image CSV per model, each written atomically."""
    write_text(out / "table.md", table(summaries) + "\n")
    write_text(out / "summary.json", json.dumps(summaries, indent=2))
    for name, rows in per_image.items():
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, ["id", *METRICS, "ms"])
        writer.writeheader()
        writer.writerows(rows)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"
        write_text(out / f"{safe}.csv", buffer.getvalue())


def pick_samples(dataset: Dataset, limit: int | None) -> list[Sample]:
    samples = sorted(dataset, key=lambda s: s.id)
    return samples[:limit] if limit else samples


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """--data FOLDER or --suite [DIR]: one of them is required."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", type=Path, help="dataset folder (e.g. ../shared/data/pfcn/test)")
    where.add_argument("--suite", type=Path, nargs="?", const=DEFAULT_SUITE_DIR, metavar="DIR",
                       help=f"every domain of the evaluation suite, built once into DIR (default {DEFAULT_SUITE_DIR})")


def dataset_folders(args: argparse.Namespace) -> dict[str, Path]:
    """Domain name -> folder: the suite's domains (built if needed), or {"": --data}."""
    return build_suite(args.suite) if args.suite else {"": args.data}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", default=[DEFAULT_MODEL],
                        help="bundled name, weights folder or Hub repo id (several: one row each)")
    add_dataset_arguments(parser)
    parser.add_argument("--input-size", type=int, help="long side for inference (default: the weights')")
    parser.add_argument("--upsampling", nargs="+", choices=UPSAMPLING, default=[UPSAMPLING[0]],
                        help="the Predictor's upsampling of the confidence (several: one row each per model)")
    parser.add_argument("--limit", type=int, help="only the first N samples (sorted by id) of each dataset")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of torch and ONNX Runtime (0: default)")
    parser.add_argument("--out", type=Path, help="folder for table.md, summary.json and per-image CSVs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        datasets = {name: Dataset.open(folder) for name, folder in dataset_folders(args).items()}
        models = {str(w): load_model(w, device=args.device) for w in args.weights}
    except (DatasetError, WeightsError) as e:
        parser.error(str(e))
    backends = {name: make_backend(model, device=args.device) for name, model in models.items()}  # one per model
    predictors = {name if len(args.upsampling) == 1 else f"{name}, {way}":
                  (model, Predictor(backends[name], input_size=args.input_size, batch_size=1, upsampling=way))
                  for name, model in models.items() for way in args.upsampling}
    summaries, per_image = [], {}
    for domain, dataset in datasets.items():
        samples = pick_samples(dataset, args.limit)
        for name, (model, predictor) in predictors.items():
            label = f"{domain} {name}".strip()
            rows = score(banet_segmenter(predictor), dataset, samples, label)
            size = f"{predictor.input_size} long side"
            summaries.append({"domain": domain, **summarize(name, rows, count_parameters(model), size)})
            per_image[label] = rows
    table = format_suite_table if args.suite else format_table
    print(table(summaries))
    if args.out:
        write_results(args.out, summaries, per_image, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
