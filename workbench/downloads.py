"""Files handed to the browser: PNGs written under a private temporary folder."""
from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

DOWNLOADS = Path(tempfile.gettempdir()) / "banet-workbench"


def save_png(array: np.ndarray, name: str) -> str:
    """Write an RGB or RGBA uint8 array as PNG in a fresh folder; returns its path."""
    folder = DOWNLOADS / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.fromarray(array).save(path, format="PNG")
    return str(path)
