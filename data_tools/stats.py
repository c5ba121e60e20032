"""Summarise a dataset: samples per split, annotation kind and source; sizes; mask coverage.

    python -m data_tools.stats DATASET [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from banet.masks import person

from .dataset import Dataset, DatasetError


def dataset_stats(dataset: Dataset) -> dict:
    sizes: Counter = Counter()
    coverage, soft, unreadable = [], 0, []
    for sample in tqdm(list(dataset), desc="stats", unit="img", leave=False):
        try:
            mask = dataset.read_mask(sample)
        except DatasetError as e:
            unreadable.append(str(e))
            continue
        sizes[f"{mask.shape[1]}x{mask.shape[0]}"] += 1
        coverage.append(float(np.count_nonzero(person(mask))) / mask.size)
        soft += bool(np.any((mask > 0) & (mask < 255)))
    return {
        "samples": len(dataset),
        "splits": dict(Counter(s.split for s in dataset)),
        "kinds": dict(Counter(s.kind for s in dataset)),
        "refined": sum(any(r.action == "refine" for r in s.history) for s in dataset),
        "sizes": dict(sizes.most_common()),
        "soft_masks": soft,
        "person_fraction": {"mean": float(np.mean(coverage)) if coverage else None,
                            "min": float(np.min(coverage)) if coverage else None,
                            "max": float(np.max(coverage)) if coverage else None},
        "unreadable": unreadable,
    }


def format_stats(stats: dict) -> str:
    frac = stats["person_fraction"]
    lines = [f"samples       {stats['samples']}",
             "splits        " + ", ".join(f"{k}: {v}" for k, v in stats["splits"].items()),
             "kinds         " + ", ".join(f"{k}: {v}" for k, v in stats["kinds"].items()),
             f"refined       {stats['refined']}",
             f"soft masks    {stats['soft_masks']}",
             "sizes         " + ", ".join(f"{k} ({v})" for k, v in list(stats["sizes"].items())[:5])]
    if frac["mean"] is not None:
        lines.append(f"person area   mean {100 * frac['mean']:.1f}%  min {100 * frac['min']:.1f}%  "
                     f"max {100 * frac['max']:.1f}%")
    lines += [f"unreadable    {u}" for u in stats["unreadable"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_tools.stats", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        stats = dataset_stats(Dataset.open(args.dataset))
    except DatasetError as e:
        parser.error(str(e))
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
