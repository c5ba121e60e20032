"""Boundary-band targets for the boundary attention loss and the refine loss (paper Eq. 1)."""
from __future__ import annotations

import cv2
import numpy as np

CANONICAL_WIDTH = 50  # W in the paper
REFERENCE_SIDE = 512  # a portrait covering REFERENCE_SIDE**2 pixels gets a band W pixels wide


def band_width(mask: np.ndarray, width: float = CANONICAL_WIDTH, reference: int = REFERENCE_SIDE,
               minimum: int = 3) -> int:
    """Dilation kernel size k = W * sqrt(portrait area) / reference, at least `minimum`.

    The paper scales the kernel with the portrait's size; using sqrt(area) keeps k a length, so
    it halves when the photo is downscaled by two and grows with a closer (larger) portrait.
    """
    area = float(np.count_nonzero(mask))
    return max(minimum, int(round(width * np.sqrt(area) / reference)))


def boundary_band(mask: np.ndarray, width: float = CANONICAL_WIDTH,
                  reference: int = REFERENCE_SIDE) -> np.ndarray:
    """Canny edges of a binary mask (H,W), dilated by `band_width`; bool (H,W). Empty mask -> all False."""
    binary = (np.asarray(mask) > 127 if mask.dtype == np.uint8 else np.asarray(mask) > 0.5)
    binary = binary.astype(np.uint8) * 255
    edges = cv2.Canny(binary, 100, 200)
    k = band_width(binary, width, reference)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    return cv2.dilate(edges, kernel) > 0
