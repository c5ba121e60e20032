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


def guided_filter(upsampling: str) -> GuidedFilter | None:
    """The filter an `upsampling` name asks for: None for "bilinear"; ValueError for an unknown name."""
    if upsampling not in UPSAMPLING:
        raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLING)}, not {upsampling!r}")
    return GuidedFilter() if upsampling == "guided" else None


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
    # float32 is enough (+ eps I keeps every covariance well conditioned); one plane per array, each
    # box filtered alone: about twice as fast as a 13-channel stack, whose planes are strided
    p = np.ascontiguousarray(confidence, np.float32)
    r, g, b = cv2.split(guide.astype(np.float32) * np.float32(1 / 255))  # red, green, blue

    def box(a: np.ndarray) -> np.ndarray:
        return _box(a, radius)

    mr, mg, mb, mp = box(r), box(g), box(b), box(p)
    rr, rg, rb = box(r * r) - mr * mr + eps, box(r * g) - mr * mg, box(r * b) - mr * mb
    gg, gb, bb = box(g * g) - mg * mg + eps, box(g * b) - mg * mb, box(b * b) - mb * mb + eps
    cr, cg, cb = box(r * p) - mr * mp, box(g * p) - mg * mp, box(b * p) - mb * mp
    # the window's colour covariance (+ eps I) inverted by its cofactors: a 3x3 solve per pixel
    i_rr, i_rg, i_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    i_gg, i_gb, i_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    inverse_det = 1 / (rr * i_rr + rg * i_rg + rb * i_rb)
    a_r = (i_rr * cr + i_rg * cg + i_rb * cb) * inverse_det
    a_g = (i_rg * cr + i_gg * cg + i_gb * cb) * inverse_det
    a_b = (i_rb * cr + i_gb * cg + i_bb * cb) * inverse_det
    return box(cv2.merge([a_r, a_g, a_b])), box(mp - a_r * mr - a_g * mg - a_b * mb)


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
    weighted = cv2.resize(a, size)  # in place where it can be: every fresh full-size array costs page faults
    cv2.multiply(weighted, photo, dst=weighted, dtype=cv2.CV_32F)
    out = cv2.resize(b, size)
    out += cv2.transform(weighted, np.full((1, 3), 1 / 255, np.float32))
    return np.clip(out, 0.0, 1.0, out=out)
