"""The dataset format: images/, masks/ and manifest.jsonl (one JSON object per sample).

A folder with images/ and masks/ but no manifest (the layout of ../shared/data) opens as a
dataset too: every image with a same-stem PNG mask is a sample, split named after the folder.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from banet.image_io import IMAGE_SUFFIXES, MAX_PIXELS, ImageLoadError, load_rgb

from .atomic import write_bytes, write_text

MANIFEST = "manifest.jsonl"
KINDS = ("mask", "polygon", "rle", "bitmap", "refined")  # how the mask was made
MAX_MANIFEST_BYTES = 32 * 1024**2  # larger manifests are refused before reading (about 60,000 samples)


class DatasetError(ValueError):
    """A dataset or one of its files is unusable; the message names the file."""


@dataclass
class Revision:
    """One step in a mask's history; sha256 is of the mask file after the step."""

    action: str  # import, refine, accept, reject, edit, resize
    sha256: str
    time: str
    note: str = ""
    details: dict = field(default_factory=dict)  # e.g. method, band width, model, original checksum


@dataclass
class Sample:
    id: str
    image: str  # path relative to the dataset root
    mask: str
    split: str = "train"
    source: str = ""  # where the annotation came from (file or tool), relative to the imported folder
    kind: str = "mask"
    history: list[Revision] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict) -> Sample:
        history = [Revision(**r) for r in data.get("history", [])]
        return cls(**{**data, "history": history})


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def encode_mask(mask: np.ndarray) -> bytes:
    """(H,W) uint8 mask -> 8-bit grayscale PNG bytes."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise DatasetError(f"a mask must be a 2-D uint8 array, got {mask.dtype} {mask.shape}")
    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit mask (H,W) uint8; colour or 16-bit files are reduced to one 8-bit channel."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise DatasetError(f"{Path(path).name}: {image.width}x{image.height} mask exceeds the "
                                   f"{MAX_PIXELS} pixel limit")
            image.load()
            if image.mode in ("I;16", "I;16B", "I"):
                return (np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
            if image.mode == "1":
                return np.asarray(image, dtype=np.uint8) * 255
            return np.asarray(image.convert("L"))
    except FileNotFoundError as e:
        raise DatasetError(f"{Path(path).name}: mask file not found") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{Path(path).name}: not a readable mask image ({e})") from e


class Dataset:
    """Samples in manifest order; every write (files and manifest) is atomic."""

    def __init__(self, root: str | os.PathLike, samples: Iterable[Sample] = (), read_only: bool = False) -> None:
        self.root = Path(root)
        self.samples: dict[str, Sample] = {s.id: s for s in samples}
        self.read_only = read_only  # plain images/ + masks/ folders are never written to
        self._replaced: list[Path] = []  # superseded by set_mask / set_image; removed once save() names the new

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | os.PathLike) -> Dataset:
        root = Path(root)
        manifest = root / MANIFEST
        if manifest.is_file():
            return cls(root, _read_manifest(manifest))
        if (root / "images").is_dir() and (root / "masks").is_dir():
            return cls(root, _paired_samples(root), read_only=True)
        raise DatasetError(f"{root}: not a dataset (no {MANIFEST}, and no images/ + masks/ folders)")

    @classmethod
    def create(cls, root: str | os.PathLike) -> Dataset:
        """A new empty dataset; refuses a folder that already holds one."""
        root = Path(root)
        if (root / MANIFEST).exists():
            raise DatasetError(f"{root}: already holds a dataset")
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        dataset = cls(root)
        dataset.save()
        return dataset

    # --- access -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples.values())

    def __getitem__(self, sample_id: str) -> Sample:
        return self.samples[sample_id]

    def select(self, splits: str | Iterable[str] | None = None) -> list[Sample]:
        if splits is None:
            return list(self)
        wanted = {splits} if isinstance(splits, str) else set(splits)
        return [s for s in self if s.split in wanted]

    def image_path(self, sample: Sample) -> Path:
        return self.root / sample.image

    def mask_path(self, sample: Sample) -> Path:
        return self.root / sample.mask

    def read_image(self, sample: Sample) -> np.ndarray:
        """(H,W,3) uint8 RGB, EXIF orientation applied."""
        try:
            return load_rgb(self.image_path(sample))
        except ImageLoadError as e:
            raise DatasetError(f"{sample.image}: {e}") from e

    def read_mask(self, sample: Sample) -> np.ndarray:
        return read_mask(self.mask_path(sample))

    # --- writing ------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self.read_only:
            raise DatasetError(f"{self.root}: a plain images/ + masks/ folder is read-only here; "
                               "import it first: python -m data_tools.import DEST --folders ...")

    def save(self) -> None:
        """Rewrite manifest.jsonl atomically, then remove the replaced files it no longer names."""
        self._check_writable()
        write_text(self.root / MANIFEST, manifest_text(self))
        named = {self.mask_path(s) for s in self} | {self.image_path(s) for s in self}
        for path in self._replaced:
            if path not in named:
                path.unlink(missing_ok=True)
        self._replaced.clear()

    def add(self, sample_id: str, image_bytes: bytes, image_suffix: str, mask: np.ndarray, *,
            split: str = "train", source: str = "", kind: str = "mask", note: str = "") -> Sample:
        """Store an image (its original encoded bytes) and its mask; call save() after a batch."""
        self._check_writable()
        if sample_id in self.samples:
            raise DatasetError(f"{sample_id}: already in the dataset")
        if kind not in KINDS:
            raise DatasetError(f"{sample_id}: unknown annotation kind {kind!r} (one of {KINDS})")
        image_rel = f"images/{sample_id}{image_suffix.lower()}"
        mask_rel = f"masks/{sample_id}.png"
        png = encode_mask(mask)
        write_bytes(self.root / image_rel, image_bytes)
        write_bytes(self.root / mask_rel, png)
        sample = Sample(sample_id, image_rel, mask_rel, split, source, kind,
                        [Revision("import", sha256_bytes(png), now(), note)])
        self.samples[sample_id] = sample
        return sample

    def set_image(self, sample_id: str, image_bytes: bytes, image_suffix: str) -> None:
        """Give a sample a new photo file (images/<id>.<checksum><suffix>); the old one goes as in set_mask."""
        self._check_writable()
        sample = self.samples[sample_id]
        new = f"images/{sample.id}.{sha256_bytes(image_bytes)[:16]}{image_suffix.lower()}"
        write_bytes(self.root / new, image_bytes)
        if new != sample.image:
            self._replaced.append(self.image_path(sample))
            sample.image = new

    def set_mask(self, sample_id: str, mask: np.ndarray, action: str, note: str = "",
                 kind: str | None = None, details: dict | None = None) -> Revision:
        """Give a sample a new mask and record the step in its history; call save() afterwards.

        The new mask goes to a new file (masks/<id>.<checksum>.png) and the old one is removed only
        once save() has written a manifest naming the new one: a crash at any point leaves the
        manifest and the mask it names in agreement, and the original never lost.
        """
        self._check_writable()
        sample = self.samples[sample_id]
        png = encode_mask(mask)
        sha = sha256_bytes(png)
        new = f"masks/{sample.id}.{sha[:16]}.png"
        write_bytes(self.root / new, png)
        if new != sample.mask:
            self._replaced.append(self.mask_path(sample))
            sample.mask = new
        revision = Revision(action, sha, now(), note, details or {})
        sample.history.append(revision)
        if kind is not None:
            sample.kind = kind
        return revision


def manifest_text(samples: Iterable[Sample]) -> str:
    """manifest.jsonl's content: one JSON object per sample."""
    return "".join(json.dumps(asdict(s), ensure_ascii=False) + "\n" for s in samples)


def _read_manifest(path: Path) -> list[Sample]:
    """The manifest's samples, read line by line after its size is checked."""
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise DatasetError(f"{path.name}: larger than {MAX_MANIFEST_BYTES // 1024**2} MB")
    samples, ids = [], set()
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    sample = _checked(Sample.from_json(json.loads(line)))
                except (json.JSONDecodeError, TypeError, ValueError) as e:
                    raise DatasetError(f"{path.name} line {number}: not a valid sample record ({e})") from e
                if sample.id in ids:
                    raise DatasetError(f"{path.name} line {number}: sample id {sample.id!r} appears twice")
                ids.add(sample.id)
                samples.append(sample)
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path.name}: not readable as UTF-8 text ({e})") from e
    return samples


def _checked(sample: Sample) -> Sample:
    """A manifest record whose files stay inside the dataset: images/<name> and masks/<name>."""
    if not isinstance(sample.id, str) or not sample.id or "/" in sample.id or "\\" in sample.id or ".." in sample.id:
        raise ValueError(f"bad sample id {sample.id!r}")
    for folder, value in (("images", sample.image), ("masks", sample.mask)):
        parts = PurePosixPath(value).parts if isinstance(value, str) else ()
        if len(parts) != 2 or parts[0] != folder or parts[1] in (".", "..") or "\\" in value:
            raise ValueError(f"{value!r} is not a file in {folder}/")
    if not all(isinstance(v, str) for v in (sample.split, sample.source, sample.kind)):
        raise ValueError("split, source and kind must be strings")
    return sample


def _paired_samples(root: Path) -> list[Sample]:
    masks = {p.stem: p for p in (root / "masks").glob("*.png")}
    samples = []
    for image in sorted((root / "images").iterdir()):
        if image.suffix.lower() in IMAGE_SUFFIXES and image.stem in masks:
            samples.append(Sample(image.stem, f"images/{image.name}", f"masks/{image.stem}.png",
                                  split=root.name, source=f"masks/{image.stem}.png"))
    return samples
