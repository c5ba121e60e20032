"""Coarse annotations made from true masks, as quick annotators and tools make them (issue 11's protocol).

- polygon: each outline simplified by cv2.approxPolyDP, epsilon = 1% of its perimeter;
- blocky: the mask 8x down- and up-sampled, then dilated or eroded by 0-3 px;
- soft: a KNN-matting-like soft mask (float in [0,1]): 4x down-sampled, blurred, up-sampled,
  after dilating or eroding the mask by 0-2 px.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from banet.masks import person

Coarsen = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def polygon(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    contours, _ = cv2.findContours(truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros_like(truth)
    for c in contours:
        cv2.fillPoly(out, [cv2.approxPolyDP(c, 0.01 * cv2.arcLength(c, True), True)], 255)
    return out


def _grow_or_shrink(mask: np.ndarray, rng: np.random.Generator, most: int) -> np.ndarray:
    k = int(rng.integers(0, most + 1))
    if not k:
        return mask
    kernel = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
    return cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)


def blocky(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = truth.shape
    small = cv2.resize(truth, (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    mask = np.where(person(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)), 255, 0).astype(np.uint8)
    return _grow_or_shrink(mask, rng, 3)


def soft(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = truth.shape
    small = cv2.resize(_grow_or_shrink(truth, rng, 2), (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small.astype(np.float32) / 255.0, (0, 0), 1.0)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


KINDS: dict[str, Coarsen] = {"polygon": polygon, "blocky": blocky, "soft": soft}
