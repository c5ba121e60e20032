"""A session's files: what it was handed, in one folder per session, and the uploads it used; both
are removed when the session ends.

The folders live inside Gradio's own cache, so Gradio serves them as they are instead of keeping a
second copy that would outlive the session."""
from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image

from .disk import MB, instance_folder, used_bytes

UPLOADS = Path(get_upload_folder())
DOWNLOADS = instance_folder(UPLOADS / "banet-downloads")  # this server's: others may share Gradio's folder
KEEP_DOWNLOADS = 8  # a session's most recent results kept; older ones are removed as new ones are written
# ... and no more than this of them (an export is at most a dataset: a third of a visitor's disk)
KEEP_BYTES = 1024 * MB
PNG_LEVEL = 1  # zlib level: 4x faster to write than PIL's default 6 for 15% more bytes (800x600 photo)


def _session_root(request: gr.Request | None) -> Path:
    """DOWNLOADS/<session>; requests without a session share 'anonymous'."""
    session = "".join(c for c in (getattr(request, "session_hash", None) or "") if c.isalnum())
    return DOWNLOADS / (session or "anonymous")


def session_folder(request: gr.Request | None) -> Path:
    """A fresh folder inside the session's own. The session's older ones go first, oldest first,
    while there are more than KEEP_DOWNLOADS or they hold more than KEEP_BYTES."""
    root = _session_root(request)
    root.mkdir(parents=True, exist_ok=True)
    older = sorted(root.iterdir(), key=lambda p: p.stat().st_mtime)
    while older and (len(older) >= KEEP_DOWNLOADS or used_bytes(root) > KEEP_BYTES):
        shutil.rmtree(older.pop(0), ignore_errors=True)
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    return folder


def save_png(array: np.ndarray, name: str, request: gr.Request | None) -> str:
    """Write an RGB or RGBA uint8 array as PNG in the session's folder; returns its path."""
    path = session_folder(request) / name
    Image.fromarray(array).save(path, format="PNG", compress_level=PNG_LEVEL)
    return str(path)


_users: dict[Path, set[str]] = {}  # an upload in Gradio's cache -> the sessions that used it
_users_lock = threading.Lock()


def used_uploads(request: gr.Request | None, *paths: str | None) -> None:
    """Note that this session read these uploads, so that they go when the last session using them
    ends (the same file sent twice is one file in Gradio's cache)."""
    session = getattr(request, "session_hash", None)
    files = [Path(p).resolve() for p in paths if p]
    with _users_lock:
        for path in files if session else ():
            if path.is_relative_to(UPLOADS.resolve()) and not path.is_relative_to(DOWNLOADS.resolve()):
                _users.setdefault(path, set()).add(session)


def remove_session(request: gr.Request) -> None:
    """Delete everything this session was handed, and the uploads no other session uses (called when
    its browser tab closes)."""
    if not request.session_hash:
        return
    shutil.rmtree(_session_root(request), ignore_errors=True)
    with _users_lock:
        unused = [path for path, sessions in _users.items() if not (sessions - {request.session_hash})]
        for path, sessions in _users.items():
            sessions.discard(request.session_hash)
        for path in unused:
            del _users[path]
    for path in unused:
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # Gradio keeps each upload in a folder of its own
        except OSError:
            pass
