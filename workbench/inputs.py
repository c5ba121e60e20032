"""Upload components whose bad files reach the user as a clear message, never a traceback."""
from __future__ import annotations

import io

import gradio as gr
import numpy as np
from gradio.data_classes import FileData
from PIL import Image

from banet.image_io import MAX_PIXELS

from .messages import user_error
from .panels import jpeg_to_cache


class PhotoInput(gr.Image):
    """gr.Image for uploads: use it with type="filepath" and image_mode=None, so Gradio hands over the
    uploaded file untouched (no decoding, no re-encoding), and decode it with banet.load_rgb.

    (No __init__ here: Gradio reads a component's properties from its __init__ signature.)
    """

    def get_block_name(self) -> str:
        return "image"  # the browser side is gr.Image's

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            name = getattr(payload, "orig_name", None) or "the upload"
            raise user_error(f"{name}: not a readable image ({e.__class__.__name__})") from e


class EditInput(gr.ImageEditor):
    """gr.ImageEditor whose uploaded layers are checked against `max_pixels` before they are decoded."""

    max_pixels = MAX_PIXELS  # set per app: edits larger than a working-size photo are refused

    def get_block_name(self) -> str:
        return "imageeditor"

    def convert_and_format_image(self, file, flatten_on_white: bool = False):
        if file is not None:
            try:
                source = file.path if isinstance(file, FileData) else io.BytesIO(file)
                with Image.open(source) as image:
                    width, height = image.size
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
                raise user_error(f"The edit is not a readable image ({e.__class__.__name__}).") from e
            if width * height > self.max_pixels:
                raise user_error(f"The edit is {width}x{height}, larger than any photo here: refused.")
        return super().convert_and_format_image(file, flatten_on_white)

    def postprocess(self, value):
        """A background given as an RGB array is sent as a JPEG (panels.jpeg_to_cache)."""
        if isinstance(value, dict) and isinstance(value.get("background"), np.ndarray):
            value = {**value, "background": jpeg_to_cache(value["background"], self.GRADIO_CACHE)}
        return super().postprocess(value)
