"""Render model outputs as RGB uint8 pictures for display (no model logic here)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from banet import Prediction
from banet.predictor import GradientField

DISPLAY_SIDE = 640  # long side of the Inspect panels: five share a row, so more is never seen
OVERLAY_COLOUR = (0, 200, 120)
BAND_COLOUR = (255, 170, 0)


def heatmap(values: np.ndarray, colormap: int = cv2.COLORMAP_INFERNO) -> np.ndarray:
    """(H,W) floats in [0,1] -> RGB uint8 heatmap."""
    grey = (np.clip(values, 0, 1) * 255 + 0.5).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, colormap), cv2.COLOR_BGR2RGB)


def tint(image: np.ndarray, region: np.ndarray, colour, alpha: float) -> np.ndarray:
    """A copy of `image` with the pixels of `region` (bool) blended towards `colour` by `alpha`."""
    flat = np.empty_like(image)
    flat[:] = np.asarray(colour, np.uint8)
    blended = cv2.addWeighted(image, 1 - alpha, flat, alpha, 0)
    out = image.copy()
    cv2.copyTo(blended, region.view(np.uint8), out)
    return out


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Tint the mask's pixels and draw its outline on the photo."""
    out = tint(image, mask, OVERLAY_COLOUR, alpha)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), max(1, round(max(mask.shape) / 400)))
    return out


def difference_overlay(image: np.ndarray, prediction: np.ndarray, annotation: np.ndarray,
                       alpha: float = 0.55) -> np.ndarray:
    """Agreement in green, false positives (model only) in red, false negatives (annotation only) in blue."""
    out = image
    for region, colour in ((prediction & annotation, (0, 200, 120)), (prediction & ~annotation, (230, 40, 40)),
                           (~prediction & annotation, (40, 90, 240))):
        out = tint(out, region, colour, alpha)
    return out


def matte_view(alpha: np.ndarray, band: np.ndarray, amount: float = 0.35) -> np.ndarray:
    """The soft matte in grey, the band it was solved in tinted amber."""
    grey = (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)
    return tint(np.repeat(grey[..., None], 3, axis=2), band, BAND_COLOUR, amount)


def gradient_picture(field: GradientField) -> np.ndarray:
    """Direction as hue, magnitude as brightness (a unit step is full brightness)."""
    hue = ((field.angle + np.pi) / (2 * np.pi) * 179).astype(np.uint8)
    value = (np.clip(field.magnitude, 0, 1) * 255).astype(np.uint8)
    hsv = np.dstack([hue, np.full_like(hue, 255), value])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def inspect_views(result: Prediction) -> dict[str, np.ndarray]:
    """The side-by-side panels of the Inspect view, at the size of `result` (see `Prediction.resized`)."""
    views = {
        "confidence": heatmap(result.confidence, cv2.COLORMAP_BONE),
        "mask overlay": overlay(result.image, result.mask),
        "image gradient": gradient_picture(result.image_gradient),
        "prediction gradient": gradient_picture(result.prediction_gradient),
    }
    if result.attention is not None:
        views["boundary attention"] = heatmap(result.attention)
    return views


def example_images() -> dict[str, np.ndarray]:
    """Public-domain portraits that ship inside installed packages (nothing is committed)."""
    import matplotlib
    import skimage.data

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return {
        "astronaut (skimage)": skimage.data.astronaut(),
        "Grace Hopper (matplotlib)": cv2.cvtColor(cv2.imread(str(hopper)), cv2.COLOR_BGR2RGB),
    }
