"""Render model outputs as RGB uint8 pictures for display (no model logic here)."""
from __future__ import annotations

from collections.abc import Callable
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


DIFFERENCE_LEGEND = "bluish green: both · orange: model only · sky blue: annotation only"


def difference_overlay(image: np.ndarray, prediction: np.ndarray, annotation: np.ndarray,
                       alpha: float = 0.55) -> np.ndarray:
    """Agreement in bluish green, model only in orange, annotation only in sky blue: the Okabe-Ito
    colours, told apart with any colour vision (DIFFERENCE_LEGEND names them)."""
    out = image
    for region, colour in ((prediction & annotation, (0, 158, 115)), (prediction & ~annotation, (230, 159, 0)),
                           (~prediction & annotation, (86, 180, 233))):
        out = tint(out, region, colour, alpha)
    return out


def matte_view(alpha: np.ndarray, band: np.ndarray, amount: float = 0.35) -> np.ndarray:
    """The soft matte in grey, the band it was solved in tinted amber."""
    grey = (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)
    return tint(np.repeat(grey[..., None], 3, axis=2), band, BAND_COLOUR, amount)


GRADIENT_PERCENTILE = 99  # the magnitude shown at full brightness: this percentile of the picture's own


def gradient_picture(field: GradientField) -> np.ndarray:
    """Direction as hue, magnitude as brightness, scaled to the picture's own strong edges (its
    GRADIENT_PERCENTILE) with a square root, so that a photo's weaker edges show structure too."""
    hue = ((field.angle + np.pi) / (2 * np.pi) * 179).astype(np.uint8)
    magnitude = field.magnitude
    scale = max(float(np.percentile(magnitude[::4, ::4], GRADIENT_PERCENTILE)), 1e-6)  # a 1/16 sample sets it
    value = (np.sqrt(np.clip(magnitude / scale, 0, 1)) * 255).astype(np.uint8)
    hsv = np.dstack([hue, np.full_like(hue, 255), value])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


INSPECT_VIEWS: dict[str, Callable[[Prediction], np.ndarray | None]] = {  # Inspect's panels, in their order
    "confidence": lambda result: heatmap(result.confidence, cv2.COLORMAP_BONE),
    "mask overlay": lambda result: overlay(result.image, result.mask),
    "boundary attention": lambda result: None if result.attention is None else heatmap(result.attention),
    "image gradient": lambda result: gradient_picture(result.image_gradient),
    "prediction gradient": lambda result: gradient_picture(result.prediction_gradient),
}


def example_images() -> dict[str, np.ndarray]:
    """Public-domain portraits that ship inside installed packages (nothing is committed)."""
    import matplotlib
    import skimage.data

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return {
        "astronaut (skimage)": skimage.data.astronaut(),
        "Grace Hopper (matplotlib)": cv2.cvtColor(cv2.imread(str(hopper)), cv2.COLOR_BGR2RGB),
    }
