"""Bilinear against guided upsampling of the confidence, on training photos only: `python -m benchmarks.upsampling`.

The guided filter's parameters (`banet.upsampling.GuidedFilter`) are chosen here, never on the
evaluation suite: photos of PFCN train and of CCP's training people as they are, and the suite's
own composites (small people, groups, crowds, PFCN people small, empty scenes) built from training
people and training scenes (`Sources(held_out=False)`). The network runs once per photo; each
upsampling is applied to its working-size confidence. Prints IoU / boundary F per domain (on
`no-person`: the share of scenes left wholly empty). A benchmark, not a test.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from itertools import islice

import numpy as np
import torch
from tqdm import tqdm

from banet import DEFAULT_MODEL, Predictor, load_model
from banet.metrics import boundary_f_score, foreground_iou
from banet.upsampling import GuidedFilter, guided_upsample, upsample
from training.config import DATA_ROOT
from training.suite import Pair, Sources, ccp_full, crowd, group, no_person, small_person


def domains(sources: Sources, limit: int) -> dict[str, Iterator[Pair]]:
    """Domain name -> up to `limit` (photo, mask) pairs, each built with its own seed."""
    def seeded(name: str) -> np.random.Generator:
        return np.random.default_rng(list(f"dev-{name}".encode()))

    built = {
        "pfcn-train": iter(sources.cast("pfcn", seeded("pfcn-train"), min(limit, len(sources.pfcn)))),
        "ccp-train": ccp_full(sources, seeded("ccp-train")),
        "small-person": small_person(sources, seeded("small-person")),
        "group": group(sources, seeded("group")),
        "crowd": crowd(sources, seeded("crowd")),
        "pfcn-small-person": small_person(sources, seeded("pfcn-small-person"), people="pfcn", count=limit),
        "no-person": no_person(sources, seeded("no-person")),
    }
    return {name: islice(pairs, limit) for name, pairs in built.items()}


def parse_filter(text: str) -> GuidedFilter:
    """"SCALE,RADIUS,EPS" -> GuidedFilter."""
    scale, radius, eps = text.split(",")
    return GuidedFilter(float(scale), int(radius), float(eps))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upsampling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=DEFAULT_MODEL)
    parser.add_argument("--limit", type=int, default=100, help="photos per domain")
    parser.add_argument("--guided", type=parse_filter, action="append", metavar="SCALE,RADIUS,EPS",
                        help="guided filter settings to try (repeatable; default: GuidedFilter's defaults)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    filters = args.guided or [GuidedFilter()]
    methods = {"bilinear": None, **{f"guided {f.scale:g}, {f.radius}, {f.eps:g}": f for f in filters}}
    # guided: the Predictor keeps the working image, which every guided row reads; bilinear is redone below
    predictor = Predictor(load_model(args.weights), batch_size=1, upsampling="guided")
    columns = []
    scores: dict[str, list[str]] = {name: [] for name in methods}
    for domain, pairs in domains(Sources(DATA_ROOT, held_out=False), args.limit).items():
        rows: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
        for image, mask in tqdm(pairs, desc=domain, total=args.limit, leave=False):
            result, truth = predictor(image), mask > 127
            for name, guide in methods.items():
                confidence = (upsample(result.working_confidence, image.shape[:2]) if guide is None else
                              guided_upsample(result.working_confidence, result.working_image, image, guide))
                predicted = confidence >= result.threshold
                rows[name].append((foreground_iou(predicted, truth), boundary_f_score(predicted, truth)))
        columns.append(f"{domain} ({len(rows['bilinear'])})")
        for name, values in rows.items():
            iou, f = 100 * np.mean(values, axis=0)
            scores[name].append(f"{iou:.2f}" if domain == "no-person" else f"{iou:.2f} / {f:.2f}")
    print(f"{args.weights}, training photos only; IoU / boundary F (no-person: share left empty); "
          "guided: scale, radius, eps")
    print("| upsampling | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for name, cells in scores.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
