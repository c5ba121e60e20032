"""Assign samples to train / val / test at random (fixed seed), rewriting the manifest atomically.

    python -m data_tools.split DATASET --val 0.1 --test 0.1 [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from .dataset import Dataset, DatasetError

T = TypeVar("T")


def seeded_order(count: int, seed: int) -> np.ndarray:
    """The one shuffle every seeded split uses: a permutation of range(count) fixed by `seed`."""
    return np.random.default_rng(seed).permutation(count)


def seeded_cut(items: Sequence[T], fraction: float, seed: int, at_least: int = 0) -> tuple[list[T], list[T]]:
    """(kept, held out): a seeded random `fraction` of `items` (at least `at_least`), each list in
    the items' own order."""
    held = set(seeded_order(len(items), seed)[:max(at_least, round(len(items) * fraction))].tolist())
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


def assign_splits(dataset: Dataset, val: float, test: float, seed: int = 0) -> Counter:
    """Shuffle sample ids with `seed` and cut them into test, val and train; returns the counts."""
    if val < 0 or test < 0 or val + test > 1:
        raise ValueError("fractions must be >= 0 and sum to at most 1")
    ids = sorted(dataset.samples)
    order = seeded_order(len(ids), seed)
    n_test, n_val = round(len(ids) * test), round(len(ids) * val)
    for rank, index in enumerate(order):
        split = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
        dataset.samples[ids[index]].split = split
    dataset.save()
    return Counter(s.split for s in dataset)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_tools.split", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--val", type=float, default=0.1, help="fraction for validation (default 0.1)")
    parser.add_argument("--test", type=float, default=0.0, help="fraction for test (default 0)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        counts = assign_splits(Dataset.open(args.dataset), args.val, args.test, args.seed)
    except (DatasetError, ValueError) as e:
        parser.error(str(e))
    print(", ".join(f"{split}: {n}" for split, n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
