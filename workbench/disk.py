"""Disk budgets for what visitors upload: per browser and for the whole server, least recently used first out.

Uploads live in root/<browser>/<upload>/ (the dataset, its proposals); an upload's last use is
the newest change time of its folder and its manifest (decisions rewrite the manifest).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import anyio
from starlette.responses import PlainTextResponse

MB = 1024**2
UPLOAD_FACTOR = 3  # bytes an upload needs per unpacked byte: the extracted copy, the dataset, its proposals


def instance_folder(root: Path) -> Path:
    """root/<this process id>: a server's own folder, beside those of other servers sharing `root`."""
    return Path(root) / str(os.getpid())


def dead_instances(root: Path) -> list[Path]:
    """The folders root/<process id> whose server is gone: what a killed server left behind."""
    return [folder for folder in Path(root).glob("*") if folder.name.isdigit() and not _alive(int(folder.name))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


class DiskFull(RuntimeError):
    """The budgets cannot make room; the message says why, in the visitor's words."""


def used_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (links not followed); 0 when it does not exist."""
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:  # removed meanwhile
                pass
    return total


def last_used(upload: Path) -> float:
    stamps = []
    for path in (upload, upload / "dataset", upload / "dataset" / "manifest.jsonl"):
        try:
            stamps.append(path.stat().st_mtime)
        except FileNotFoundError:
            pass
    return max(stamps, default=0.0)


def uploads(root: Path) -> list[Path]:
    """Every upload folder, least recently used first."""
    return sorted((p for p in root.glob("*/*") if p.is_dir()), key=last_used)


def remove(folder: Path) -> None:
    """Remove a folder, and its browser's folder when that is left empty."""
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()
    except OSError:  # not empty, or gone
        pass


def make_room(root: Path, upload: Path, needed: int, per_browser: int, total: int, idle_seconds: float) -> list[Path]:
    """Evict uploads until `needed` more bytes for `upload` (root/<browser>/<name>) fit both budgets:
    first the same browser's other uploads, then any upload unused for `idle_seconds`, least
    recently used first. Returns what was removed; DiskFull when the budgets cannot be met."""
    if needed > per_browser:
        raise DiskFull(f"this upload needs about {needed / MB:.0f} MB of disk once unpacked; the limit per "
                       f"visitor is {per_browser / MB:.0f} MB")
    removed: list[Path] = []
    mine = [p for p in uploads(root) if p.parent == upload.parent and p != upload]
    while used_bytes(upload.parent) - used_bytes(upload) + needed > per_browser and mine:
        removed.append(mine.pop(0))
        remove(removed[-1])
    cutoff = time.time() - idle_seconds
    idle = [p for p in uploads(root) if p != upload and last_used(p) < cutoff]
    while used_bytes(root) - used_bytes(upload) + needed > total:
        if not idle:
            raise DiskFull("the server's space for uploads is full; try again later")
        removed.append(idle.pop(0))
        remove(removed[-1])
    return removed


def prune(root: Path, days: float) -> int:
    """Remove uploads untouched for `days`; returns how many."""
    cutoff = time.time() - days * 86400
    old = [p for p in uploads(root) if last_used(p) < cutoff]
    for folder in old:
        remove(folder)
    return len(old)


def sweep_older(folder: Path, seconds: float) -> int:
    """Remove the entries of `folder` unchanged for `seconds` (temporary files of ended work); returns how many."""
    cutoff, removed = time.time() - seconds, 0
    for entry in folder.glob("*") if folder.is_dir() else ():
        if entry.lstat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed += 1
    return removed


class UploadBudget:
    """ASGI middleware: an upload (POST to a path ending in /upload) is answered 507 while Gradio's
    cache (`folder`) and the upload's declared length would exceed `limit` bytes. Gradio keeps
    uploads for an hour whether or not a handler ever reads them; this bounds what that costs."""

    def __init__(self, app, folder: Path, limit: int) -> None:
        self.app, self.folder, self.limit = app, Path(folder), limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/upload"):
            declared = dict(scope["headers"]).get(b"content-length", b"0")
            length = int(declared) if declared.isdigit() else 0
            if await anyio.to_thread.run_sync(used_bytes, self.folder) + length > self.limit:
                refusal = PlainTextResponse("The server's space for uploads is full; try again later.", 507)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
