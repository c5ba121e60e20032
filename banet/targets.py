"""Boundary-band targets for the boundary attention loss and the refine loss (paper Eq. 1)."""
from __future__ import annotations

import cv2
import numpy as np

from .masks import as_bool

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


def edge_band(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Canny edges of a binary mask (H,W), dilated by a disc `pixels` across; bool (H,W)."""
    edges = cv2.Canny(as_bool(mask).astype(np.uint8) * 255, 100, 200)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pixels, pixels))
    return cv2.dilate(edges, kernel) > 0


def boundary_band(mask: np.ndarray, width: float = CANONICAL_WIDTH,
                  reference: int = REFERENCE_SIDE) -> np.ndarray:
    """`edge_band` of `band_width` pixels for the mask; bool (H,W). Empty mask -> all False."""
    binary = as_bool(mask)
    return edge_band(binary, band_width(binary, width, reference))
