"""Working-size maps to the photo's size: bilinear, or edge-aware with the photo as a guide.

The edge-aware way is He and Sun's fast guided filter (arXiv 1505.00996; He et al., ECCV 2010),
colour guide: per window the confidence is taken as a linear function of the photo's RGB, fitted
on a subsampled grid, and that function is evaluated on the full-size photo, so the mask's edge
lands on the photo's own edges instead of on a bilinear blur of the working-size map.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

UPSAMPLING = ("bilinear", "guided")  # the Predictor's choices; the first is its default


@dataclass(frozen=True)
class GuidedFilter:
    """Parameters of `guided_upsample`; the defaults were chosen on PFCN and CCP training photos,
    not on the evaluation suite (the paper has no such step)."""

    scale: float = 0.5  # the coefficients' grid, as a share of the working size (the filter's subsampling s = 2)
    radius: int = 2  # box radius on that grid: a 5x5 window, 10x10 working pixels
    eps: float = 1e-3  # regularisation, with RGB in [0, 1]: larger keeps the map smoother across weak edges


def upsample(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a map in [0,1] to size=(h, w), clipped to [0,1]: in float32 the weights of
    cv2's convex combination can sum to 1 + 1e-7 (PFCN test 00864 had confidence 1.0000001)."""
    out = cv2.resize(a, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0, out=out)


def _box(a: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(a, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def guided_coefficients(confidence: np.ndarray, guide: np.ndarray, radius: int,
                        eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(a, b), window-averaged, with confidence ~ a . RGB + b in every window (He et al.'s eq. 14).

    Args:
        confidence: (h, w) float map.
        guide: (h, w, 3) uint8 RGB of the same size.
    Returns:
        a: (h, w, 3) float32, b: (h, w) float32.
    """
    p = confidence.astype(np.float32)
    rgb = guide.astype(np.float32) / 255  # float32 is enough: + eps I keeps every covariance well conditioned
    r, g, b = (rgb[..., i] for i in range(3))  # red, green, blue
    means = _box(np.dstack([r, g, b, p, r * r, r * g, r * b, g * g, g * b, b * b, r * p, g * p, b * p]), radius)
    mr, mg, mb, mp = (means[..., i] for i in range(4))
    rr, rg, rb = means[..., 4] - mr * mr + eps, means[..., 5] - mr * mg, means[..., 6] - mr * mb
    gg, gb, bb = means[..., 7] - mg * mg + eps, means[..., 8] - mg * mb, means[..., 9] - mb * mb + eps
    cr, cg, cb = means[..., 10] - mr * mp, means[..., 11] - mg * mp, means[..., 12] - mb * mp
    # the window's colour covariance (+ eps I) inverted by its cofactors: a 3x3 solve per pixel
    i_rr, i_rg, i_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    i_gg, i_gb, i_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    det = rr * i_rr + rg * i_rg + rb * i_rb
    a_r = (i_rr * cr + i_rg * cg + i_rb * cb) / det
    a_g = (i_rg * cr + i_gg * cg + i_gb * cb) / det
    a_b = (i_rb * cr + i_gb * cg + i_bb * cb) / det
    offset = mp - a_r * mr - a_g * mg - a_b * mb
    averaged = _box(np.dstack([a_r, a_g, a_b, offset]), radius)
    return np.ascontiguousarray(averaged[..., :3]), np.ascontiguousarray(averaged[..., 3])


def guided_upsample(confidence: np.ndarray, working_image: np.ndarray, photo: np.ndarray,
                    params: GuidedFilter = GuidedFilter()) -> np.ndarray:
    """The working-size confidence at the photo's size, its edges on the photo's edges; in [0,1].

    Args:
        confidence: (h, w) float map at the working size.
        working_image: (h, w, 3) uint8, the photo as the network saw it.
        photo: (H, W, 3) uint8, the photo at the size wanted.
    """
    h, w = confidence.shape
    grid = max(1, round(w * params.scale)), max(1, round(h * params.scale))
    a, b = guided_coefficients(cv2.resize(confidence, grid, interpolation=cv2.INTER_AREA),
                               cv2.resize(working_image, grid, interpolation=cv2.INTER_AREA),
                               params.radius, params.eps)
    size = photo.shape[1], photo.shape[0]
    weighted = cv2.resize(a, size)  # in place from here: fresh full-size arrays cost page faults
    cv2.multiply(weighted, photo, dst=weighted, dtype=cv2.CV_32F)
    out = cv2.resize(b, size)
    out += cv2.transform(weighted, np.full((1, 3), 1 / 255, np.float32))
    return np.clip(out, 0.0, 1.0, out=out)
