"""Open an uploaded annotation archive: safe extraction, format detection, import.

A zip may hold a dataset in this project's format (manifest.jsonl), paired images/ + masks/
folders, a COCO JSON beside its images, a Supervisely project (*/ann/*.json) or LabelMe JSON
files beside their images; the top folder of the archive may wrap any of them.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from .dataset import MANIFEST, Dataset, DatasetError
from .importers import (ImportReport, Item, import_into, read_coco, read_folders, read_labelme,
                        read_supervisely)
from .resize import shrink_sample

MAX_FILES = 20_000
MAX_BYTES = 4 * 1024**3  # uncompressed total


class ArchiveError(ValueError):
    """The archive is unsafe or unusable; the message says why."""


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise ArchiveError(f"{archive.name}: not a readable zip archive") from e


def unpacked_size(archive: Path) -> int:
    """Bytes the archive's entries take once extracted, as its directory states (safe_extract holds
    every entry to its stated size)."""
    with _open_zip(archive) as zf:
        return sum(m.file_size for m in zf.infolist())


def safe_extract(archive: Path, dest: Path, max_bytes: int = MAX_BYTES) -> Path:
    """Extract a zip refusing absolute paths, '..', links and oversized contents (zip bombs)."""
    with _open_zip(archive) as zf:
        members = zf.infolist()
        if len(members) > MAX_FILES:
            raise ArchiveError(f"{archive.name}: {len(members)} entries, more than {MAX_FILES}")
        if sum(m.file_size for m in members) > max_bytes:
            raise ArchiveError(f"{archive.name}: more than {max_bytes / 1024**2:.0f} MB uncompressed")
        paths = [PurePosixPath(m.filename.replace("\\", "/")) for m in members]
        for member, path in zip(members, paths):
            if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
                raise ArchiveError(f"{archive.name}: unsafe path {member.filename!r}")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise ArchiveError(f"{archive.name}: {member.filename!r} is a symbolic link")
        dest.mkdir(parents=True, exist_ok=True)
        for member, path in zip(members, paths):
            target = dest.joinpath(*path.parts)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
                raise ArchiveError(f"{archive.name}: {member.filename!r} is corrupt or unsupported ({e})") from e
    return dest


def _root(folder: Path) -> Path:
    """Step into a single wrapping top folder."""
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return _root(entries[0]) if len(entries) == 1 and entries[0].is_dir() else folder


def _head(path: Path, chars: int = 1_000_000) -> str:
    """The start of a text file, enough to tell its format, never the whole of a large one."""
    with open(path, encoding="utf-8", errors="ignore") as f:
        return f.read(chars)


def detect(folder: Path) -> tuple[str, Iterable[Item] | None]:
    """(format names, items to import); items is None for a dataset already in this format. A zip
    holding several layouts (images/ + masks/ beside LabelMe files, say) imports each of them."""
    root = _root(folder)
    if (root / MANIFEST).is_file():
        return "dataset", None
    found: dict[str, Iterable[Item]] = {}
    if (root / "images").is_dir() and (root / "masks").is_dir():
        found["folders"] = read_folders(root / "images", root / "masks")
    if list(root.glob("**/ann/*.json")):
        found["supervisely"] = read_supervisely(root)
    jsons = {j: _head(j) for j in sorted(root.glob("*.json"))}
    coco = [j for j, text in jsons.items() if '"annotations"' in text]
    if coco and "folders" not in found:
        found["coco"] = read_coco(coco[0], root / "images" if (root / "images").is_dir() else root)
    elif jsons and (not found or any('"shapes"' in text for text in jsons.values())):
        found["labelme"] = read_labelme(root)  # beside another layout: only when LabelMe files are there
    if not found:
        raise ArchiveError("found no dataset: expected manifest.jsonl, images/ + masks/, COCO, "
                           "Supervisely or LabelMe files")
    return " + ".join(found), itertools.chain.from_iterable(found.values())


def opened_before(workdir: Path) -> bool:
    """Whether open_archive has already made the dataset in `workdir` (it is reopened as it is)."""
    return (workdir / "dataset" / MANIFEST).is_file()


def open_archive(archive: Path, workdir: Path, max_side: int | None = None,
                 max_bytes: int = MAX_BYTES) -> tuple[Dataset, str, ImportReport | None]:
    """Extract into workdir/raw, then open (or import into workdir/dataset); returns the dataset,
    the detected format and the import report (None when nothing was imported). A workdir that
    already holds the imported dataset is reopened as it is, with its review decisions.

    Only the dataset is kept: the extracted files go once imported, and an archive that fails
    leaves nothing behind. With max_side, larger photos are shrunk with their masks.
    """
    if opened_before(workdir):
        return Dataset.open(workdir / "dataset"), "imported earlier", None
    shutil.rmtree(workdir, ignore_errors=True)  # what an earlier attempt that did not finish left
    try:
        raw = safe_extract(archive, workdir / "raw", max_bytes)
        kind, items = detect(raw)
        if items is None:
            staging = workdir / "staging"
            os.replace(_root(raw), staging)
            dataset, report = Dataset.open(staging), None
            for sample in list(dataset) if max_side else ():
                with contextlib.suppress(DatasetError):  # an unreadable sample is reported when it is used
                    shrink_sample(dataset, sample, max_side)
            dataset.save()
        else:
            dataset = Dataset.create(workdir / "staging")
            report = import_into(dataset, items, max_side=max_side)
            if not report.imported:
                raise ArchiveError("nothing could be imported:\n" + report.summary())
        shutil.rmtree(raw, ignore_errors=True)
        os.replace(workdir / "staging", workdir / "dataset")  # the dataset appears whole, or not at all
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Dataset.open(workdir / "dataset"), kind, report
