"""Uploaded datasets in the workspace (WORKSPACE/<browser>/<archive>/): where each lives, the disk
budgets when one is unpacked, and where refinement proposals are kept."""
from __future__ import annotations

import hashlib
from pathlib import Path

from data_tools.archive import open_archive, opened_before, unpacked_size
from data_tools.dataset import Dataset
from data_tools.proposals import ProposalCache

from . import disk
from .settings import MB, WORKSPACE, Settings

EVICTED = "Your oldest uploads were removed to make room for this one."


def proposal_cache(root: Path) -> ProposalCache:
    """Beside an uploaded dataset, so that pruning removes both; for a server folder (local use
    only), under the workspace, never inside the user's folder."""
    root = Path(root).resolve()
    if root.is_relative_to(WORKSPACE.resolve()):
        return ProposalCache(root.parent / "proposals")
    return ProposalCache(WORKSPACE.parent / "proposals" / hashlib.sha256(str(root).encode()).hexdigest()[:16])


def upload_dir(browser_key: str, archive: Path) -> Path:
    """Per-browser, per-archive folder: the same upload in the same browser reopens its decisions."""
    digest = hashlib.sha256()
    with open(archive, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    key = "".join(c for c in browser_key if c.isalnum())[:32] or "anonymous"
    return WORKSPACE / key / digest.hexdigest()[:16]


def open_upload(archive: Path, browser_key: str, settings: Settings) -> tuple[Dataset, str]:
    """Unpack (or reopen) an uploaded archive within the disk budgets; returns the dataset and a
    note for the visitor. ArchiveError, DatasetError or disk.DiskFull say why it cannot."""
    workdir = upload_dir(browser_key, archive)
    budget, evicted = settings.session_disk_mb * MB, []
    if not opened_before(workdir):
        needed = disk.UPLOAD_FACTOR * unpacked_size(archive)
        evicted = disk.make_room(WORKSPACE, workdir, needed, budget, settings.total_disk_mb * MB,
                                 settings.state_minutes * 60)
    dataset, kind, report = open_archive(archive, workdir, settings.max_side, budget // disk.UPLOAD_FACTOR)
    note = f"opened {kind} archive" + (f": {report.summary()}" if report else "")
    if any(p.parent == workdir.parent for p in evicted):
        note += "\n" + EVICTED
    return dataset, note
