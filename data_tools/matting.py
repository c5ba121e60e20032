"""Closed-form alpha matting (Levin et al. 2008) on the unknown pixels of a trimap, with pymatting's
Laplacian, incomplete-Cholesky preconditioner and conjugate-gradient solver; optionally with the
paper's soft constraints (its lambda (alpha - b)^T D (alpha - b) term), per-pixel weights D."""
from __future__ import annotations

import contextlib
import io

import numpy as np
from pymatting.laplacian.cf_laplacian import cf_laplacian
from pymatting.preconditioner.ichol import ichol
from pymatting.solver.cg import cg
from scipy.sparse import diags

EPSILON = 1e-7  # pymatting's default regulariser of the colour-line model
SHIFTS = (1e-3, 1e-2, 0.1, 1.0, 10.0)  # ichol retries; from 1e-3, not 0: at 0 and 1e-4 it fails on most bands and prints
MARGIN = 2  # pixels kept around the unknown region's bounding box: the Laplacian's 3x3 windows


def quiet_ichol(matrix):
    """pymatting's incomplete-Cholesky preconditioner, retrying SHIFTS without printing: ichol prints a
    PERFORMANCE WARNING to stdout for every shift that fails, and on a band some always do. The
    preconditioner only speeds conjugate gradients up; the solution is the same."""
    with contextlib.redirect_stdout(io.StringIO()):
        return ichol(matrix, shifts=list(SHIFTS))


def solve_alpha(image: np.ndarray, known: np.ndarray, unknown: np.ndarray,
                pull: np.ndarray | None = None) -> np.ndarray:
    """Alpha (H,W float64 in [0,1]): `known` (H,W values in [0,1]) where `unknown` is False, the
    matte that best fits the photo's local colour lines where it is True; with `pull` (H,W weights
    >= 0), each unknown pixel is also drawn towards its value in `known` by its weight.

    Only the bounding box of the unknown pixels (plus MARGIN) is solved, so the cost follows the
    band, not the photo.
    """
    alpha = known.astype(np.float64).copy()
    ys, xs = np.nonzero(unknown)
    if not len(ys):
        return alpha
    h, w = unknown.shape
    box = (slice(max(ys.min() - MARGIN, 0), min(ys.max() + MARGIN + 1, h)),
           slice(max(xs.min() - MARGIN, 0), min(xs.max() + MARGIN + 1, w)))
    crop = np.ascontiguousarray(image[box], dtype=np.float64) / 255.0
    u = unknown[box].ravel()
    laplacian = cf_laplacian(crop, epsilon=EPSILON, is_known=~unknown[box])
    values = alpha[box].ravel()
    rows = laplacian[u]
    inner = rows[:, u].tocsr()
    rhs = -rows[:, ~u].dot(values[~u])
    if pull is not None:
        weights = pull[box].ravel()[u].astype(np.float64)
        inner = (inner + diags(weights)).tocsr()
        rhs += weights * values[u]
    values[u] = cg(inner, rhs, M=quiet_ichol(inner))
    alpha[box] = np.clip(values, 0.0, 1.0).reshape(crop.shape[:2])
    return alpha
