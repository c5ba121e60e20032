"""Evaluate weights on a dataset: mean per-image IoU, two-class mIoU, boundary F, Boundary IoU,
gradient alignment, parameters and latency; prints a table and writes it (markdown, JSON, CSV).

    python -m training.evaluate --weights banet-64 --data ../shared/data/pfcn/test
    python -m training.evaluate --weights runs/ablation-*/model --data ../shared/data/pfcn/test --out results/ablation
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

from banet import Predictor, WeightsError, count_parameters, load_model
from banet.metrics import evaluate_pair
from data_tools.atomic import write_text
from data_tools.dataset import Dataset, DatasetError, Sample

METRICS = ("iou", "miou", "boundary_f", "boundary_iou", "gradient_alignment")
HEADERS = {"iou": "IoU", "miou": "mIoU", "boundary_f": "boundary F", "boundary_iou": "Boundary IoU",
           "gradient_alignment": "grad. align."}

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
        gt = dataset.read_mask(sample) > 127
        mask, seconds = segment(rgb)
        rows.append({"id": sample.id, **evaluate_pair(mask, gt, rgb), "ms": 1000 * seconds})
    return rows


def summarize(name: str, rows: list[dict], params: int | None, input_size: str) -> dict:
    summary = {"model": name, "images": len(rows), "input": input_size,
               **{m: float(np.mean([r[m] for r in rows])) for m in METRICS},
               "ms": float(np.median([r["ms"] for r in rows[1:] or rows])),  # first call warms up
               "params_m": None if params is None else params / 1e6}
    summary["fps"] = 1000.0 / summary["ms"] if summary["ms"] else None
    return summary


def format_table(summaries: list[dict]) -> str:
    head = ["model", "images", "input"] + [HEADERS[m] for m in METRICS] + ["params (M)", "ms / image", "fps"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [s["model"], str(s["images"]), s["input"]] + [f"{100 * s[m]:.2f}" for m in METRICS]
        cells += ["n/a" if s["params_m"] is None else f"{s['params_m']:.3f}", f"{s['ms']:.1f}",
                  "n/a" if s["fps"] is None else f"{s['fps']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(out: Path, summaries: list[dict], per_image: dict[str, list[dict]]) -> None:
    """table.md, summary.json and one per-image CSV per model, each written atomically."""
    write_text(out / "table.md", format_table(summaries) + "\n")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", default=["banet-64"],
                        help="bundled name, weights folder or Hub repo id (several: one row each)")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder")
    parser.add_argument("--input-size", type=int, help="long side for inference (default: the weights')")
    parser.add_argument("--limit", type=int, help="only the first N samples (sorted by id)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--out", type=Path, help="folder for table.md, summary.json and per-image CSVs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        dataset = Dataset.open(args.data)
    except DatasetError as e:
        parser.error(str(e))
    samples = pick_samples(dataset, args.limit)
    summaries, per_image = [], {}
    for weights in args.weights:
        try:
            model = load_model(weights, device=args.device)
        except WeightsError as e:
            parser.error(str(e))
        predictor = Predictor(model, device=args.device, input_size=args.input_size, batch_size=1)
        rows = score(banet_segmenter(predictor), dataset, samples, str(weights))
        size = f"{predictor.input_size} long side"
        summaries.append(summarize(str(weights), rows, count_parameters(model), size))
        per_image[str(weights)] = rows
    print(format_table(summaries))
    if args.out:
        write_results(args.out, summaries, per_image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
