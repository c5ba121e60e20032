"""Segmentation metrics on binary masks (H,W); every function takes any mask `masks.as_bool` reads."""
from __future__ import annotations

import cv2
import numpy as np

from .gradients import map_gradients, photo_gradients, to_tensor
from .masks import as_bool
from .targets import boundary_band


def _ratio(num: int, den: int) -> float:
    return 1.0 if den == 0 else num / den


def foreground_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """|P & G| / |P | G| of the person class; 1.0 when both are empty."""
    p, g = as_bool(pred), as_bool(gt)
    return _ratio(int(np.count_nonzero(p & g)), int(np.count_nonzero(p | g)))


def false_positive_area(pred: np.ndarray, gt: np.ndarray) -> float:
    """Share of the background (not G) that is called person (P); 0.0 when there is no background."""
    p, g = as_bool(pred), as_bool(gt)
    background = int(np.count_nonzero(~g))
    return int(np.count_nonzero(p & ~g)) / background if background else 0.0


def two_class_miou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean of the person and background IoUs."""
    p, g = as_bool(pred), as_bool(gt)
    return (foreground_iou(p, g) + foreground_iou(~p, ~g)) / 2


def contour(mask: np.ndarray) -> np.ndarray:
    """One-pixel inner contour: mask minus its 3x3 erosion (image borders are not contour)."""
    m = as_bool(mask).astype(np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return (m - eroded).astype(bool)


def _within(points: np.ndarray, reference: np.ndarray, tolerance: float) -> int:
    """How many `points` pixels lie within `tolerance` (Euclidean) of a `reference` pixel."""
    if not reference.any():
        return 0
    distance = cv2.distanceTransform((~reference).astype(np.uint8), cv2.DIST_L2, 5)
    return int(np.count_nonzero(points & (distance <= tolerance)))


def boundary_f_score(pred: np.ndarray, gt: np.ndarray, tolerance: float = 2.0) -> float:
    """F-measure of contour precision and recall at a pixel tolerance (DAVIS-style)."""
    pc, gc = contour(pred), contour(gt)
    n_p, n_g = int(pc.sum()), int(gc.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision = _within(pc, gc, tolerance) / n_p
    recall = _within(gc, pc, tolerance) / n_g
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def inner_band(mask: np.ndarray, distance: int) -> np.ndarray:
    """Mask pixels within `distance` of its contour (Cheng et al.'s mask_to_boundary)."""
    m = as_bool(mask).astype(np.uint8)
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=distance)[1:-1, 1:-1]
    return (m - eroded).astype(bool)


def boundary_iou(pred: np.ndarray, gt: np.ndarray, dilation_ratio: float = 0.02) -> float:
    """Boundary IoU (Cheng et al., CVPR 2021); d = dilation_ratio x image diagonal, at least 1."""
    h, w = np.shape(gt)
    d = max(1, int(round(dilation_ratio * np.hypot(h, w))))
    pb, gb = inner_band(pred, d), inner_band(gt, d)
    return _ratio(int(np.count_nonzero(pb & gb)), int(np.count_nonzero(pb | gb)))


def alignment_maps(mask: np.ndarray, image: np.ndarray, band: np.ndarray,
                   image_eps: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of `band`: (|cos| between mask and image gradient directions x the mask's gradient
    magnitude, that magnitude); `gradient_alignment` is the ratio of their sums. Image directions
    fade to 0 on flat regions (|grad I| < image_eps), as in the refine loss."""
    m = np.asarray(mask)
    soft = m.astype(np.float32) if m.dtype.kind == "f" else as_bool(m).astype(np.float32)
    g_img, g_msk = photo_gradients(image), map_gradients(soft)
    ix, iy = g_img.direction(image_eps)
    mx, my = g_msk.direction()
    weight = g_msk.magnitude * to_tensor(np.asarray(band, np.float32))
    aligned = (ix * mx + iy * my).abs() * weight
    return aligned[0, 0].numpy(), weight[0, 0].numpy()


def gradient_alignment(mask: np.ndarray, image: np.ndarray, band: np.ndarray | None = None,
                       image_eps: float = 0.05) -> float:
    """How well a mask's edges follow the photo's edges, in [0, 1] (1 = every edge on an image edge).

    Inside the boundary band (by default the band of `mask` itself), the mean of |cos| between
    mask and image gradient directions, weighted by the mask's gradient magnitude (`alignment_maps`).
    mask: bool/uint8/soft float (H,W); image: RGB or gray, uint8 or float in [0,1].
    """
    band = boundary_band(as_bool(mask).astype(np.uint8) * 255) if band is None else np.asarray(band) > 0
    return alignment_ratio(*alignment_maps(mask, image, band, image_eps))


def alignment_ratio(aligned: np.ndarray, weight: np.ndarray) -> float:
    """`gradient_alignment` from its `alignment_maps`; 1.0 where the mask has no edge."""
    total = float(weight.sum(dtype=np.float64))
    return 1.0 if total == 0 else float(aligned.sum(dtype=np.float64)) / total


def evaluate_pair(pred: np.ndarray, gt: np.ndarray, image: np.ndarray | None = None,
                  tolerance: float = 2.0) -> dict[str, float]:
    """All metrics of one prediction against one annotation (+ gradient alignment if `image`)."""
    scores = {
        "iou": foreground_iou(pred, gt),
        "miou": two_class_miou(pred, gt),
        "boundary_f": boundary_f_score(pred, gt, tolerance),
        "boundary_iou": boundary_iou(pred, gt),
    }
    if image is not None:
        band = boundary_band(as_bool(gt).astype(np.uint8) * 255)
        scores["gradient_alignment"] = gradient_alignment(pred, image, band)
    return scores
