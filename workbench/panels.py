"""Pictures the app shows: sent as JPEG encoded by OpenCV, which is several times faster than
Gradio's default WebP (the encoding was most of a Refine step's time)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import gradio as gr
import numpy as np

JPEG_QUALITY = 90  # outlines and band edges stay crisp; 600x800 photo: ~4 ms where WebP takes ~30


def jpeg_to_cache(picture: np.ndarray, cache: str | Path) -> str:
    """Write an RGB uint8 picture as JPEG into Gradio's cache, in a folder named by its content's hash
    as Gradio does; returns its path."""
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"cannot encode a picture of shape {picture.shape} as JPEG")
    folder = Path(cache) / hashlib.sha256(data).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "image.jpg"
    path.write_bytes(data.tobytes())
    return str(path)


class Panel(gr.Image):
    """A read-only picture: an RGB array from a handler is sent as a JPEG (jpeg_to_cache).

    (No __init__ here: Gradio reads a component's properties from its __init__ signature.)
    """

    def get_block_name(self) -> str:
        return "image"  # the browser side is gr.Image's

    def postprocess(self, value):
        if isinstance(value, np.ndarray):
            value = jpeg_to_cache(value, self.GRADIO_CACHE)
        return super().postprocess(value)
