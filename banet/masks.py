"""Binary masks from the array types users hand in: the one owner of the threshold rule."""
from __future__ import annotations

import numpy as np

PERSON_LEVEL = 127  # an 8-bit mask's person pixels are those above this level


def person(mask: np.ndarray) -> np.ndarray:
    """bool person mask of an 8-bit (0..255) mask, soft or not: above PERSON_LEVEL."""
    return np.asarray(mask) > PERSON_LEVEL


def as_bool(mask: np.ndarray) -> np.ndarray:
    """bool mask from bool, 0/1 or 0/255 integers, or soft [0,1] float input (threshold at the middle)."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask
    if np.issubdtype(mask.dtype, np.integer):
        return mask > 0 if mask.size and mask.max() <= 1 else person(mask)  # 0/1 labels, else 8-bit levels
    return mask > 0.5


def parse_mask(mask: object, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Checked `as_bool`: a 2-D (or H,W,1) bool, integer (0/1 or 0..255) or float ([0,1]) mask of
    `shape`, else ValueError saying what is wrong."""
    a = np.asarray(mask)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"a mask must be a 2-D (H,W) array, got shape {a.shape}")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"the mask is {a.shape[1]}x{a.shape[0]} but the photo is {shape[1]}x{shape[0]}")
    if a.dtype != bool and not np.issubdtype(a.dtype, np.integer) and not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"a mask must hold bool, integer or float values, got {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1):
        raise ValueError("a float mask must hold values in [0, 1] (no NaN)")
    if np.issubdtype(a.dtype, np.integer) and a.size and (a.min() < 0 or a.max() > 255):
        raise ValueError("an integer mask must hold 0/1 or 0..255 values")
    return as_bool(a)
