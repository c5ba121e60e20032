"""Upload components whose bad files reach the user as a clear message, never a traceback."""
from __future__ import annotations

import gradio as gr
from PIL import Image

from gradio.events import Dependency

class PhotoInput(gr.Image):
    """gr.Image for uploads: use it with type="filepath" and decode the file with banet.load_rgb.

    (No __init__ here: Gradio reads a component's properties from its __init__ signature.)
    """

    def get_block_name(self) -> str:
        return "image"  # the browser side is gr.Image's

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            name = getattr(payload, "orig_name", None) or "the upload"
            raise gr.Error(f"{name}: not a readable image ({e.__class__.__name__})") from e
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component