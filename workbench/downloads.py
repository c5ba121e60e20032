"""Files handed to the browser, in one folder per session that is removed when the session ends."""
from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

DOWNLOADS = Path(tempfile.gettempdir()) / "banet-workbench" / "downloads"
PNG_LEVEL = 1  # zlib level: 4x faster to write than PIL's default 6 for 15% more bytes (800x600 photo)


def _session_root(request: gr.Request | None) -> Path:
    """DOWNLOADS/<session>; requests without a session share 'anonymous'."""
    session = "".join(c for c in (getattr(request, "session_hash", None) or "") if c.isalnum())
    return DOWNLOADS / (session or "anonymous")


def session_folder(request: gr.Request | None) -> Path:
    """A fresh folder inside the session's own."""
    folder = _session_root(request) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


def save_png(array: np.ndarray, name: str, request: gr.Request | None) -> str:
    """Write an RGB or RGBA uint8 array as PNG in the session's folder; returns its path."""
    path = session_folder(request) / name
    Image.fromarray(array).save(path, format="PNG", compress_level=PNG_LEVEL)
    return str(path)


def remove_session(request: gr.Request) -> None:
    """Delete everything this session was handed (called when its browser tab closes)."""
    if request.session_hash:
        shutil.rmtree(_session_root(request), ignore_errors=True)
