"""The paper's application: put the person on a new background with the soft mask."""
from __future__ import annotations

import cv2
import numpy as np

from banet.image_io import cover_crop

MODES = ("colour", "blur", "image")


def replace_background(image: np.ndarray, alpha: np.ndarray, mode: str = "colour",
                       colour: tuple[int, int, int] = (0, 177, 64), blur: float = 12.0,
                       background: np.ndarray | None = None) -> np.ndarray:
    """Alpha-composite the photo (H,W,3 uint8) over a new background; alpha (H,W) in [0,1]."""
    height, width = alpha.shape
    if mode == "colour":
        new = np.empty_like(image)
        new[:] = np.asarray(colour, np.uint8)
    elif mode == "blur":
        new = cv2.GaussianBlur(image, (0, 0), max(0.1, blur))
    elif mode == "image":
        if background is None:
            raise ValueError("choose a background image first")
        new = cover_crop(background, (height, width))
    else:
        raise ValueError(f"unknown background mode {mode!r} (one of {', '.join(MODES)})")
    a = np.clip(alpha, 0, 1)[..., None].astype(np.float32)
    return np.round(a * image + (1 - a) * new).astype(np.uint8)


def cutout(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGBA (H,W,4) uint8: the photo with the soft mask as its alpha channel."""
    return np.dstack([image, np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)])


def parse_colour(value: str) -> tuple[int, int, int]:
    """'#rrggbb' or 'rgb(r, g, b)' / 'rgba(r, g, b, a)' (Gradio's ColorPicker forms) -> (r, g, b)."""
    value = value.strip()
    if value.startswith("#") and len(value) == 7:
        return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    if value.startswith("rgb"):
        parts = value[value.index("(") + 1:value.rindex(")")].split(",")[:3]
        return tuple(int(round(float(p))) for p in parts)  # type: ignore[return-value]
    raise ValueError(f"not a colour: {value!r}")
