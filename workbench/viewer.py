"""Inspect and Compare without Gradio: one photo through the model, drawn for display; a photo's
annotation scored against the model's mask."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from banet import Prediction, Predictor, load_rgb
from banet.image_io import image_size, shrink_to
from banet.masks import person
from banet.metrics import evaluate_pair, gradient_alignment
from data_tools.importers import mask_from_annotation_file

from .views import DISPLAY_SIDE, INSPECT_VIEWS, difference_overlay, overlay

PANELS = tuple(INSPECT_VIEWS)
METRICS_HELP = """
- **IoU**: shared person pixels over the pixels either mask calls person (100 = identical).
- **boundary F (2 px)**: how many edge pixels of each mask lie within 2 px of the other's edge.
- **Boundary IoU**: IoU counted only in a thin band along both edges, where masks usually differ.
- **gradient alignment**: how well a mask's edge follows the photo's own edges (Sobel directions),
  per mask; the higher of the two follows the photo better.
"""


@dataclass
class Inspection:
    """The session's last Inspect result: at the working size, and as displayed (see Prediction.resized)."""

    prediction: Prediction
    shown: Prediction
    about: str  # the model's input size, backend and device

    def panels(self, names: tuple[str, ...] = PANELS) -> list[np.ndarray | None]:
        """The named panels (all by default), drawn at display size; None where the model has no such map."""
        return [INSPECT_VIEWS[name](self.shown) for name in names]

    def summary(self) -> str:
        """The line under Inspect's button: model time, where it ran, and how much of the photo is person."""
        return (f"{self.shown.seconds * 1000:.0f} ms model time at long side {self.about}; "
                f"person covers {self.shown.mask.mean():.0%} of the photo")

    def rethresholded(self, threshold: float) -> Inspection:
        """The same result at another threshold, without the model: the displayed maps are reused."""
        shown = copy.copy(self.shown)  # keeps the upsampled confidence it already computed
        shown.threshold = threshold
        return Inspection(self.prediction, shown, self.about)


def inspect(predictor: Predictor, photo: str | Path, threshold: float, max_side: int) -> Inspection:
    """Segment a photo file at the working size (`max_side`); ImageLoadError for a bad file."""
    result = predictor(load_rgb(photo, max_side))
    backend = predictor.backend
    about = f"{predictor.input_size} ({backend.name} on {backend.device})"
    return Inspection(result, result.resized(DISPLAY_SIDE, threshold), about)  # threshold per request


@dataclass
class Comparison:
    difference: np.ndarray  # the photo tinted by agreement (see views.difference_overlay)
    annotation: np.ndarray  # the photo with the annotation drawn on it
    rows: list[tuple[str, float]]

    def table(self) -> str:
        return ("| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {100 * v:.2f} |" for k, v in self.rows)
                + "\n" + METRICS_HELP)


def compare(predictor: Predictor, photo: str | Path, annotation_file: str | Path, threshold: float,
            max_side: int) -> Comparison:
    """Score an annotation file of a photo against the model's mask. The annotation is drawn at the
    photo's own size, then shrunk as the photo was. ImageLoadError or ValueError for unusable files."""
    result = predictor(load_rgb(photo, max_side))
    annotation = person(shrink_to(mask_from_annotation_file(Path(annotation_file), *image_size(photo)), max_side))
    result.threshold = threshold
    scores = evaluate_pair(result.mask, annotation)  # gradient alignment below: each mask in its own band
    rows = [("IoU", scores["iou"]), ("boundary F (2 px)", scores["boundary_f"]),
            ("Boundary IoU", scores["boundary_iou"]),
            ("gradient alignment, prediction", gradient_alignment(result.mask, result.image)),
            ("gradient alignment, annotation", gradient_alignment(annotation, result.image))]
    return Comparison(difference_overlay(result.image, result.mask, annotation), overlay(result.image, annotation),
                      rows)
