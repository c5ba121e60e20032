"""Model-guided refinement of coarse masks: closed-form matting in the annotation's boundary band,
the model narrowing the unknown region to where the edge can be (and, for a quick polygon, holding
the matte to the annotation where the two agree), and a guard that keeps the annotation unless the
proposal follows the photo's edges clearly better.

    python -m data_tools.refine DATASET [--weights banet-64] [--band-px 0] [--split train] [--apply]

Example:
    >>> result = refine(image, annotation, guide=predictor(image).confidence)
    >>> result.mask, result.alpha, result.band, result.confidence
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from banet import DEFAULT_MODEL, Predictor, WeightsError, load_model
from banet.image_io import ImageInput, load_rgb
from banet.masks import as_bool, parse_mask
from banet.metrics import alignment_maps, alignment_ratio, contour
from banet.targets import band_width, edge_band

from .dataset import Dataset, DatasetError, Sample, sha256_bytes
from .matting import solve_alpha

METHOD = "guided-matting"


@dataclass(frozen=True)
class RefineParams:
    """What a refinement depends on besides the photo, the annotation and the model; all recorded
    in the provenance. Chosen on PFCN train and CCP training photos (benchmarks/refine.py reports
    on PFCN test and the held-out CCP split, never used to choose them)."""

    band_px: int = 0  # band width in pixels around the annotation's edge; 0 = automatic (band_for)
    edge_radius: float = 0.2  # with a model guide, unknown = band ∩ (this x band_px around either edge ∪ where they disagree)
    model_sure: float = 0.8  # ... where they disagree and the model is sure: confidence past this (or below 1 - this)
    sure: float = 0.8  # a region the matte flips must reach alpha > sure (or < 1 - sure) somewhere
    region_gain: float = 0.1  # each changed region must raise the edge alignment around it by this much (more if thick)
    error_floor_px: float = 3.0  # regions thicker than the annotation's error (>= this) need x thickness / error
    rough_depth: float = 2.0  # regions up to this x the error deep need floor / error as much: a rough annotation's own errors
    clear_depth: float = 1.5  # regions deeper than this x the error must also be clear in the matte on average ...
    clear_alpha: float = 0.75  # ... its mean alpha on the proposal's side at least this: half-transparent hair the annotation includes stays
    min_gain: float = 0.15  # keep the annotation unless the proposal's edge alignment is this much higher
    polygon_share: float = 0.6  # an annotation with this share of its outline on straight runs is a polygon (straight_share) ...
    polygon_max_error: float = 0.5  # ... whose chords explain its error up to this x the W=50 band; beyond, model and annotation disagree
    polygon_reach: float = 5.0  # ... gets an automatic band reaching this x its error past its edge: chords stray further than their median
    max_widen: float = 3.0  # ... at most this x the W=50 band ...
    polygon_min_gain: float = 0.0  # ... and its proposal is kept unless it lowers the edge alignment: chords follow no edge
    polygon_pull: float = 0.01  # ... and its matte pulled towards it with this weight where the model is sure of it
    pull_from: float = 0.75  # the pull grows from 0 at this confidence (or 1 - this) to its full weight at 1 (or 0)
    doubtful_below: float = 0.2  # proposals with a smaller gain are flagged for a careful look


@dataclass(frozen=True)
class Refinement:
    """One proposal. `mask` equals the annotation outside `band`, and everywhere when not `changed`."""

    alpha: np.ndarray  # float32 (H,W) in [0,1]: the matte inside the band, the annotation outside; alpha > 0.5 = mask
    mask: np.ndarray  # uint8 (H,W) 0/255
    band: np.ndarray  # bool (H,W): the pixels the proposal may change
    band_px: int
    confidence: float  # edge gain: gradient alignment of the proposal minus the annotation's, in the band
    changed: bool
    params: RefineParams

    @property
    def priority(self) -> tuple[bool, float]:
        """Review order, highest first: changed proposals by confidence, then the unchanged ones."""
        return self.changed, self.confidence

    @property
    def doubtful(self) -> bool:
        return self.changed and self.confidence < self.params.doubtful_below

    def details(self) -> dict:
        """Provenance of this proposal: method, its parameters (band in pixels) and its confidence."""
        return {"method": METHOD, **asdict(self.params), "band_px": self.band_px,
                "confidence": round(self.confidence, 4), "changed": self.changed}


def refine(image: ImageInput, annotation: np.ndarray, guide: np.ndarray | None = None,
           params: RefineParams = RefineParams()) -> Refinement:
    """Refine a coarse `annotation` of `image` inside the band around its edge.

    Args:
        image: RGB photo (array, PIL image or path).
        annotation: the coarse mask, (H,W) bool, 0/1, 0/255 or float in [0,1].
        guide: the model's confidence (H,W floats in [0,1]); None = plain matting on the whole band.
        params: band width in pixels and the method's thresholds.

    Raises ValueError naming the problem for a mask of another size or type.
    """
    rgb = load_rgb(image)
    coarse = parse_mask(annotation, rgb.shape[:2])
    confidence = None if guide is None else np.asarray(guide, np.float32)
    model = None if confidence is None else parse_mask(confidence, rgb.shape[:2])
    error_px, polygon, band_px = _band_rule(coarse, model, params)
    band = edge_band(coarse, band_px)
    unknown = band  # without a model, a region's thickness asks for no more gain (error_px stays inf)
    if model is not None:
        near = 2 * max(2, round(params.edge_radius * band_px)) + 1
        model_sure = np.abs(confidence - 0.5) > params.model_sure - 0.5
        unknown = band & (edge_band(coarse, near) | edge_band(model, near) | ((coarse != model) & model_sure))
        error_px = max(error_px, params.error_floor_px)
    pull = _pull(coarse, model, confidence, params) if polygon else None  # only a guided annotation can be a quick polygon
    alpha = solve_alpha(rgb, coarse, unknown, pull)
    flipped = _flip_sure_regions(alpha, coarse, band, params.sure)
    mask, gain = coarse, 0.0
    if (flipped != coarse).any():  # the annotation's alignment maps serve both guards
        before = alignment_maps(coarse, rgb, band)
        mask = _keep_aligned_regions(flipped, coarse, alpha, before, alignment_maps(flipped, rgb, band), params, error_px)
        gain = alignment_ratio(*alignment_maps(mask, rgb, band)) - alignment_ratio(*before)
    alpha = np.where((alpha > 0.5) == mask, alpha, mask)  # where a region was not flipped, nor is the matte
    changed = gain >= (params.polygon_min_gain if polygon else params.min_gain)
    if not changed:
        mask, alpha = coarse, coarse.astype(np.float64)
    return Refinement(alpha.astype(np.float32), mask.astype(np.uint8) * 255, band, band_px, float(gain),
                      changed, params)


def band_for(annotation: np.ndarray, guide: np.ndarray | None = None, params: RefineParams = RefineParams()) -> int:
    """The band width in pixels `refine` works in for this annotation and model confidence."""
    coarse = parse_mask(annotation, np.shape(annotation)[:2])
    model = None if guide is None else parse_mask(guide, coarse.shape)
    return _band_rule(coarse, model, params)[2]


def _band_rule(coarse: np.ndarray, model: np.ndarray | None, params: RefineParams) -> tuple[float, bool, int]:
    """The annotation's error from the model's edge (inf without a model), whether it is a quick
    polygon, and the band width in pixels: the one place `refine` and `band_for` decide the band."""
    error_px = np.inf if model is None else annotation_error(coarse, model)
    base_px = band_width(coarse)  # W=50 scaled to the person
    polygon = quick_polygon(coarse, error_px, base_px, params)
    return error_px, polygon, _band_px(base_px, error_px, polygon, params)


def _band_px(base_px: int, error_px: float, polygon: bool, params: RefineParams) -> int:
    """`params.band_px`, or the W=50 band `base_px`, widened for a quick polygon to reach
    `polygon_reach` x its error past its edge, up to `max_widen` x `base_px`."""
    if params.band_px:
        return params.band_px
    if not polygon:
        return base_px
    return int(min(max(base_px, 2 * round(params.polygon_reach * error_px) + 1), params.max_widen * base_px))


def quick_polygon(annotation: np.ndarray, error_px: float, base_px: int, params: RefineParams = RefineParams()) -> bool:
    """Whether an annotation is a quick polygon tool's: mostly straight runs (`polygon_share`), whose
    chords explain its error from the model's edge `error_px` (up to `polygon_max_error` x its W=50
    band `base_px`; beyond, the model and the annotation disagree, and the annotation is treated as
    any other)."""
    return error_px <= params.polygon_max_error * base_px and straight_share(annotation) >= params.polygon_share


def straight_share(annotation: np.ndarray, run: float = 0.04, tolerance_px: float = 1.0) -> float:
    """Share of the annotation's outline (the photo's border left out) on straight runs longer than
    `run` x the photo's long side, within `tolerance_px`: 0.73-1.0 for quick polygons, at most 0.52
    for true, blocky and soft masks (PFCN and CCP training photos)."""
    h, w = annotation.shape
    contours, _ = cv2.findContours(as_bool(annotation).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    total = straight = 0.0
    for outline in contours:
        corners = cv2.approxPolyDP(outline, tolerance_px, True)[:, 0].astype(np.float64)
        ends = np.roll(corners, -1, axis=0)
        lengths = np.linalg.norm(ends - corners, axis=1)[~(_on_border(corners, h, w) & _on_border(ends, h, w))]
        total += lengths.sum()
        straight += lengths[lengths >= run * max(h, w)].sum()
    return straight / total if total else 0.0


def _on_border(points: np.ndarray, h: int, w: int) -> np.ndarray:
    """Which (x, y) points lie on the photo's outermost two pixels."""
    x, y = points[:, 0], points[:, 1]
    return (x <= 1) | (y <= 1) | (x >= w - 2) | (y >= h - 2)


def _pull(coarse: np.ndarray, model: np.ndarray, confidence: np.ndarray, params: RefineParams) -> np.ndarray:
    """How strongly the matte is pulled towards the annotation per pixel: where the model's mask
    agrees with it, from 0 at confidence `pull_from` to `polygon_pull` where the model is certain;
    nowhere else. Inside a quick polygon, a person's parts whose colours the matte alone cannot tell from the
    background (a shoe on a grey pavement) stay; where the two disagree, the photo decides."""
    sureness = (np.maximum(confidence, 1 - confidence) - params.pull_from) / (1 - params.pull_from)
    return np.where(model == coarse, params.polygon_pull * np.clip(sureness, 0.0, 1.0), 0.0)


def _flip_sure_regions(alpha: np.ndarray, coarse: np.ndarray, band: np.ndarray, sure: float) -> np.ndarray:
    """The annotation with each connected region where the matte crosses 0.5 against it flipped, if
    the matte is sure (past `sure`) somewhere in it: a hysteresis that leaves the 1-2 px fringe of a
    good annotation alone."""
    out = coarse.copy()
    for grow, seed in (((alpha > 0.5) & ~coarse & band, (alpha > sure) & ~coarse),
                       ((alpha <= 0.5) & coarse & band, (alpha < 1 - sure) & coarse)):
        count, labels = cv2.connectedComponents(grow.astype(np.uint8), connectivity=8)
        keep = np.zeros(count, bool)
        keep[np.unique(labels[seed & grow])] = True
        keep[0] = False
        out[keep[labels]] = ~coarse[keep[labels]]
    return out


def annotation_error(annotation: np.ndarray, model: np.ndarray) -> float:
    """How far the annotation's edge typically lies from the model's, in pixels (the median): a
    blocky or soft mask 2-3 px, a quick polygon about 6 (PFCN and CCP training photos)."""
    edge, own = contour(model), contour(annotation)
    if not edge.any() or not own.any():
        return np.inf
    distance = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 3)
    return float(np.median(distance[own]))


def _keep_aligned_regions(proposal: np.ndarray, coarse: np.ndarray, alpha: np.ndarray,
                          before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray],
                          params: RefineParams, error_px: float, reach: int = 5) -> np.ndarray:
    """The proposal's changes, each connected region (grown by `reach` px) kept only if the edge
    alignment there (`alignment_maps` of the annotation `before`, of the proposal `after`) rises by
    `region_gain` times the region's depth (its thickness over the annotation's error `error_px`)
    where it is deeper than the error: a leak into a shadow whose edge is as strong as the person's
    own is dropped, a fixed corner or step is kept, and a cut far deeper than the annotation's own
    errors (wisps of hair, a pale stripe of a dress) must follow the photo's edges much better to be
    kept. Up to `rough_depth`, a rough annotation (error above `error_floor_px`, a quick polygon's
    chords) asks proportionally less: its own errors are that deep. A region deeper than `clear_depth`
    must also be clear in the matte `alpha` (its mean on the proposal's side at least `clear_alpha`):
    wisps of hair the annotation includes are half-transparent there, and the annotation keeps them."""
    changed = proposal != coarse
    zones = cv2.dilate(changed.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach)))
    count, labels = cv2.connectedComponents(zones, connectivity=8)
    flat = labels.ravel()
    local = []
    for aligned, weight in (before, after):
        local.append(np.bincount(flat, aligned.ravel(), count) / np.maximum(np.bincount(flat, weight.ravel(), count), 1e-6))
    inside = labels[changed]  # the region of each changed pixel
    thickness = np.zeros(count)  # per region: the largest distance of a changed pixel from an unchanged one
    np.maximum.at(thickness, inside, cv2.distanceTransform(changed.astype(np.uint8), cv2.DIST_L2, 3)[changed])
    depth = thickness / error_px
    rough = min(params.error_floor_px / error_px, 1.0) if np.isfinite(error_px) else 1.0  # no guide: no error known
    needed = params.region_gain * np.where(depth > params.rough_depth, depth, rough * np.maximum(depth, 1.0))
    support = np.where(proposal, alpha, 1.0 - alpha)[changed]
    clear = np.bincount(inside, support, count) / np.maximum(np.bincount(inside, minlength=count), 1)
    keep = (local[1] - local[0] >= needed) & ((depth <= params.clear_depth) | (clear >= params.clear_alpha))
    keep[0] = False
    return np.where(changed & keep[labels], proposal, coarse)


@dataclass
class Proposal:
    sample: Sample
    refinement: Refinement


def refine_sample(dataset: Dataset, sample: Sample, predictor: Predictor,
                  params: RefineParams = RefineParams()) -> Refinement:
    """`refine` on a dataset sample, guided by the predictor's confidence."""
    image = dataset.read_image(sample)
    return refine(image, dataset.read_mask(sample), predictor(image).confidence, params)


def propose_all(dataset: Dataset, predictor: Predictor, samples: list[Sample],
                params: RefineParams = RefineParams()) -> list[Proposal]:
    """A proposal per sample, likely improvements (highest confidence) first, unchanged ones last."""
    proposals = [Proposal(sample, refine_sample(dataset, sample, predictor, params))
                 for sample in tqdm(samples, desc="refine", unit="img", leave=False)]
    return sorted(proposals, key=lambda p: p.refinement.priority, reverse=True)


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


def provenance(dataset: Dataset, sample: Sample, refinement: Refinement, model: str) -> dict:
    """What a refinement step records: method and parameters, model, checksum of the mask it replaced."""
    original = sha256_bytes(dataset.mask_path(sample).read_bytes())
    return {**refinement.details(), "model": model, "original_sha256": original}


def apply(dataset: Dataset, proposal: Proposal, model: str) -> None:
    """Write the refined mask (atomically) with its provenance; call dataset.save() afterwards."""
    details = provenance(dataset, proposal.sample, proposal.refinement, model)
    dataset.set_mask(proposal.sample.id, proposal.refinement.mask, "refine", kind="refined", details=details)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_tools.refine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--weights", default=DEFAULT_MODEL, help="bundled name, folder or Hub repo id")
    parser.add_argument("--band-px", type=int, default=0,
                        help="band width in pixels around each annotation's edge (default 0: W=50 scaled to the person)")
    parser.add_argument("--split", action="append", help="only these splits (repeatable)")
    parser.add_argument("--apply", action="store_true", help="write the changed masks (default: only rank)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.band_px < 0:
        parser.error("--band-px must be 0 (automatic) or a positive number of pixels")
    try:
        dataset = Dataset.open(args.dataset)
        if args.apply and dataset.read_only:
            dataset.save()  # raises the read-only message before any work
        predictor = Predictor(load_model(args.weights, device=args.device), device=args.device)
        proposals = propose_all(dataset, predictor, dataset.select(args.split), RefineParams(band_px=args.band_px))
    except (DatasetError, WeightsError, ValueError) as e:
        parser.error(str(e))
    print("confidence  band px  proposal   sample")
    for p in proposals:
        r = p.refinement
        verdict = "doubtful" if r.doubtful else "change" if r.changed else "keep"
        print(f"{r.confidence:+10.3f}  {r.band_px:7d}  {verdict:9s}  {p.sample.id}")
    if args.apply:
        changed = [p for p in proposals if p.refinement.changed]
        for proposal in changed:
            apply(dataset, proposal, args.weights)
        dataset.save()
        print(f"refined {len(changed)} of {len(proposals)} masks in {args.dataset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
