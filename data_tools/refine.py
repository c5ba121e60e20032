"""Model-guided refinement of coarse masks: keep the annotation away from its boundary, take the
model's soft mask inside the boundary band; rank samples by how much annotation and model disagree.

    python -m data_tools.refine DATASET --weights banet-64 [--band-width 50] [--split train] [--apply]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from banet import DEFAULT_MODEL, Predictor, WeightsError, load_model
from banet.metrics import foreground_iou
from banet.targets import CANONICAL_WIDTH, boundary_band

from .dataset import Dataset, DatasetError, Sample, sha256_bytes

METHOD = "band-blend"


def propose(annotation: np.ndarray, confidence: np.ndarray, band_width: float = CANONICAL_WIDTH) -> np.ndarray:
    """Refined soft mask (uint8 0-255): the annotation outside the band around its edge, the
    model's confidence inside it. Away from the edge the two agree by construction, so the hard
    switch at the band's border leaves no visible seam."""
    if annotation.shape != confidence.shape:
        raise ValueError(f"annotation {annotation.shape} and prediction {confidence.shape} differ in size")
    band = boundary_band(annotation, band_width)
    refined = annotation.copy()
    refined[band] = np.round(np.clip(confidence[band], 0, 1) * 255).astype(np.uint8)
    return refined


def disagreement(annotation: np.ndarray, confidence: np.ndarray) -> float:
    """1 - IoU of the annotation and the model's mask: 0 = identical, 1 = disjoint."""
    return 1.0 - foreground_iou(confidence >= 0.5, annotation > 127)


@dataclass
class Proposal:
    sample: Sample
    refined: np.ndarray
    disagreement: float


def apply_strokes(mask: np.ndarray, strokes: np.ndarray, add: tuple[int, int, int],
                  remove: tuple[int, int, int]) -> np.ndarray:
    """`mask` (H,W uint8) with brush strokes (RGBA) painted in the `add` colour set to 255, `remove` to 0.

    Each painted pixel goes to the nearer of the two colours; strokes of another size than the
    mask (a browser canvas scaled the photo) are resized to it first.
    """
    h, w = mask.shape
    if strokes.shape[:2] != (h, w):
        strokes = cv2.resize(strokes, (w, h), interpolation=cv2.INTER_NEAREST)
    painted = strokes[..., 3] > 0
    rgb = strokes[..., :3].astype(np.int32)
    to_add = ((rgb - add) ** 2).sum(-1) <= ((rgb - remove) ** 2).sum(-1)
    out = mask.copy()
    out[painted & to_add] = 255
    out[painted & ~to_add] = 0
    return out


def propose_all(dataset: Dataset, predictor: Predictor, samples: list[Sample],
                band_width: float = CANONICAL_WIDTH) -> list[Proposal]:
    """A proposal per sample, worst disagreement first."""
    proposals = []
    for sample in tqdm(samples, desc="refine", unit="img", leave=False):
        annotation = dataset.read_mask(sample)
        confidence = predictor(dataset.read_image(sample)).confidence
        proposals.append(Proposal(sample, propose(annotation, confidence, band_width),
                                  disagreement(annotation, confidence)))
    return sorted(proposals, key=lambda p: -p.disagreement)


def provenance(dataset: Dataset, sample: Sample, band_width: float, model: str) -> dict:
    """What a refinement step records: method, band width, model, checksum of the mask it replaced."""
    original = sha256_bytes(dataset.mask_path(sample).read_bytes())
    return {"method": METHOD, "band_width": band_width, "model": model, "original_sha256": original}


def apply(dataset: Dataset, proposal: Proposal, band_width: float, model: str) -> None:
    """Write the refined mask (atomically) with its provenance; call dataset.save() afterwards."""
    details = provenance(dataset, proposal.sample, band_width, model)
    dataset.set_mask(proposal.sample.id, proposal.refined, "refine", kind="refined", details=details)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_tools.refine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--weights", default=DEFAULT_MODEL, help="bundled name, folder or Hub repo id")
    parser.add_argument("--band-width", type=float, default=CANONICAL_WIDTH,
                        help="W: band width for a portrait covering 512x512 pixels (default 50)")
    parser.add_argument("--split", action="append", help="only these splits (repeatable)")
    parser.add_argument("--apply", action="store_true", help="write the refined masks (default: only rank)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        dataset = Dataset.open(args.dataset)
        if args.apply and dataset.read_only:
            dataset.save()  # raises the read-only message before any work
        predictor = Predictor(load_model(args.weights, device=args.device), device=args.device)
        proposals = propose_all(dataset, predictor, dataset.select(args.split), args.band_width)
    except (DatasetError, WeightsError) as e:
        parser.error(str(e))
    for proposal in proposals:
        print(f"{proposal.disagreement:.4f}  {proposal.sample.id}")
    if args.apply:
        for proposal in proposals:
            apply(dataset, proposal, args.band_width, args.weights)
        dataset.save()
        print(f"refined {len(proposals)} masks in {args.dataset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
