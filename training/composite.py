"""Framing and compositing of people: crops of a photo, people pasted onto other backgrounds.

Shared by the training augmentation and the evaluation suite, so both frame people the same way.
Boxes are (top, left, bottom, right) in pixels, bottom/right exclusive, floats allowed.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from banet.masks import person

Box = tuple[float, float, float, float]


def person_box(mask: np.ndarray) -> Box | None:
    """Bounding box of the mask's person pixels, or None for an empty mask."""
    rows, cols = np.nonzero(person(mask))
    if rows.size == 0:
        return None
    return float(rows.min()), float(cols.min()), float(rows.max() + 1), float(cols.max() + 1)


def touches_bottom(mask: np.ndarray, box: Box) -> bool:
    """Whether the person is cut by the photo's bottom edge (a portrait or half-body photo)."""
    return box[2] >= mask.shape[0] - 1


def crop(image: np.ndarray, box: Box, size: tuple[int, int], border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
    """The box of `image` resampled (bilinear) to size=(h, w); parts outside the photo are filled
    by `border`. Shrinking by more than 2x averages first (area resize), so it does not alias."""
    top, left, bottom, right = box
    h, w = size
    sx, sy = w / (right - left), h / (bottom - top)
    matrix = np.float32([[sx, 0, -left * sx], [0, sy, -top * sy]])
    if min(sx, sy) < 0.5:
        image = cv2.resize(image, None, fx=sx, fy=sy, interpolation=cv2.INTER_AREA)
        matrix = np.float32([[1, 0, -left * sx], [0, 1, -top * sy]])
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)


def cover_box(shape: tuple[int, ...], size: tuple[int, int], zoom: float = 1.0,
              position: tuple[float, float] = (0.5, 0.5)) -> Box:
    """The largest box of the canvas aspect inside the photo, shrunk by `zoom`, placed at `position`
    (0..1 of the free room, vertically and horizontally); zoom 1 at (0.5, 0.5) is a centre crop."""
    ph, pw = shape[:2]
    h, w = size
    scale = min(ph / h, pw / w) / zoom
    bh, bw = h * scale, w * scale
    top, left = (ph - bh) * position[0], (pw - bw) * position[1]
    return top, left, top + bh, left + bw


def random_crop(photos: Sequence[np.ndarray], size: tuple[int, int], rng: np.random.Generator,
                max_zoom: float) -> np.ndarray:
    """A crop of a random photo of the list at size=(h, w): its covering box shrunk by a zoom in
    [1, max_zoom], at a random place."""
    photo = photos[rng.integers(len(photos))]
    return crop(photo, cover_box(photo.shape, size, rng.uniform(1.0, max_zoom), tuple(rng.random(2))), size)


def upper_body_box(mask: np.ndarray, box: Box, size: tuple[int, int], fraction: float,
                   margin: float = 0.08, shift: float = 0.0) -> Box:
    """A box of the canvas aspect over the top `fraction` of the person's height (head and
    shoulders to half body), `margin` of its height above the head, centred on the person's
    pixels in those rows and moved sideways by `shift` of its width."""
    top, _, bottom, _ = box
    h, w = size
    height = (bottom - top) * fraction / (1 - margin)
    width = height * w / h
    y0 = top - margin * height
    rows = person(mask[int(max(top, 0)):int(top + (bottom - top) * fraction) + 1])
    cols = np.nonzero(rows.any(axis=0))[0]
    centre = cols.mean() if cols.size else (box[1] + box[3]) / 2
    x0 = centre - width / 2 + shift * width
    return y0, x0, y0 + height, x0 + width


def paste_person(canvas: np.ndarray, target: np.ndarray, image: np.ndarray, mask: np.ndarray,
                 box: Box, height: float, centre_x: float, bottom_y: float, margin: float = 0.04) -> None:
    """Paste the person in `box` of (image, mask) onto canvas/target, in place, scaled to `height`
    pixels tall with its box's bottom centre at (centre_x, bottom_y).

    The scaled mask is the alpha (resampling softens its edge by about a pixel); the target is
    the union of the people so far. `margin` of the box's size is carried along on each side.
    """
    top, left, bottom, right = box
    mh, mw = (bottom - top) * margin, (right - left) * margin
    top, left, bottom, right = top - mh, left - mw, bottom + mh, right + mw
    scale = height / (box[2] - box[0])
    out_h, out_w = max(1, round((bottom - top) * scale)), max(1, round((right - left) * scale))
    person = crop(image, (top, left, bottom, right), (out_h, out_w), cv2.BORDER_REPLICATE)
    alpha = crop(mask, (top, left, bottom, right), (out_h, out_w), cv2.BORDER_CONSTANT)
    y0 = round(bottom_y - (box[2] - top) * scale)
    x0 = round(centre_x - out_w / 2)
    ch, cw = target.shape
    cy0, cx0, cy1, cx1 = max(y0, 0), max(x0, 0), min(y0 + out_h, ch), min(x0 + out_w, cw)
    if cy0 >= cy1 or cx0 >= cx1:
        return
    a = alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    p = person[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    weight = a.astype(np.float32)[..., None] / 255
    region = canvas[cy0:cy1, cx0:cx1]
    region[:] = (p * weight + region * (1 - weight) + 0.5).astype(np.uint8)
    np.maximum(target[cy0:cy1, cx0:cx1], a, out=target[cy0:cy1, cx0:cx1])
