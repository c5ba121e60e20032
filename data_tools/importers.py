"""Importers for coarse annotations: paired mask folders, COCO, Supervisely and LabelMe JSON.

Each reader yields an `Annotation` per image or a `Problem` naming the file that could not be
used; `import_into` validates the rest (readable image, matching size, non-empty mask) and adds
them to a dataset, so one bad file never stops an import.
"""
from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from banet.image_io import IMAGE_SUFFIXES, ImageLoadError, image_size, open_image

from . import rle
from .dataset import Dataset, DatasetError, read_mask
from .resize import shrink_pair


@dataclass
class Annotation:
    sample_id: str
    image: Path | bytes  # a file, or the encoded image itself (LabelMe imageData)
    image_suffix: str
    mask: np.ndarray | Callable[[int, int], np.ndarray]  # a mask, or a rasterizer taking (h, w)
    kind: str
    source: str
    declared_size: tuple[int, int] | None = None  # (h, w) the annotation file states


@dataclass
class Problem:
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    soft: list[str] = field(default_factory=list)  # imported masks with values other than 0 and 255
    shrunk: list[str] = field(default_factory=list)  # photos (and masks) shrunk to the importer's long side

    def summary(self) -> str:
        lines = [f"imported {len(self.imported)} samples, skipped {len(self.problems)}"]
        if self.soft:
            lines.append(f"  {len(self.soft)} masks are not binary (values between 0 and 255); kept as soft "
                         f"masks: {', '.join(self.soft[:5])}{' ...' if len(self.soft) > 5 else ''}")
        if self.shrunk:
            lines.append(f"  {len(self.shrunk)} photos were larger than this server's limit and were shrunk with "
                         f"their masks (recorded in their history): {', '.join(self.shrunk[:5])}"
                         f"{' ...' if len(self.shrunk) > 5 else ''}")
        return "\n".join(lines + [f"  skipped {p}" for p in self.problems])


Item = Annotation | Problem
MAX_JSON_BYTES = 32 * 1024**2  # larger annotation files are refused before reading: parsing takes up to 25x their size
# What a malformed annotation file raises while it is read or rasterized.
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError, zlib.error, cv2.error)


def _malformed(e: Exception) -> str:
    return f"malformed annotation ({e.__class__.__name__}: {e})"


def _records(data: dict, key: str) -> list:
    """data[key] as a list of JSON objects (missing: empty); TypeError when it is something else."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TypeError(f"'{key}' must be a list of objects")
    return value


def fill_polygons(polygons: Iterable[np.ndarray], holes: Iterable[np.ndarray] = ()) -> Callable[[int, int], np.ndarray]:
    """A rasterizer: polygons (k,2 float x,y) filled with 255, then holes cut out."""
    polygons, holes = list(polygons), list(holes)

    def raster(height: int, width: int) -> np.ndarray:
        mask = np.zeros((height, width), np.uint8)
        limit = 4 * max(height, width)  # far outside the image; keeps int32 and cv2 safe
        for value, group in ((255, polygons), (0, holes)):
            arrays = [np.asarray(p, np.float64).reshape(-1, 2) for p in group]
            if not all(np.isfinite(a).all() for a in arrays):
                raise ValueError("polygon has a coordinate that is not a finite number")
            points = [np.round(np.clip(a, -limit, limit)).astype(np.int32).reshape(-1, 1, 2)
                      for a in arrays if len(a) >= 3]
            if points:
                cv2.fillPoly(mask, points, value)
        return mask

    return raster


# --- readers --------------------------------------------------------------------------------

def read_folders(images: Path, masks: Path) -> Iterator[Item]:
    """images/<stem>.<ext> paired with masks/<stem>.png (any 8-bit mask; soft masks kept)."""
    mask_files = {p.stem: p for p in masks.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    for image in sorted(images.iterdir()):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            if image.is_file():
                yield Problem(image.name, "not an image file (unknown suffix)")
            continue
        if image.stem not in mask_files:
            yield Problem(image.name, f"no mask named {image.stem}.png in {masks}")
            continue
        mask_file = mask_files.pop(image.stem)
        try:
            mask = read_mask(mask_file)
        except DatasetError as e:
            yield Problem(mask_file.name, str(e).split(": ", 1)[-1])
            continue
        yield Annotation(image.stem, image, image.suffix, mask, "mask", f"{masks.name}/{mask_file.name}")
    for stem, mask_file in sorted(mask_files.items()):
        yield Problem(mask_file.name, f"no image for this mask in {images}")


def read_coco(annotation_file: Path, images: Path, labels: set[str] | None = None) -> Iterator[Item]:
    """COCO instances JSON: the union of all polygon / RLE segments of the chosen categories
    (default: 'person' when the file has it, else every category)."""
    data = _load_json(annotation_file)
    if isinstance(data, Problem):
        yield data
        return
    try:
        by_image: dict[int, list[dict]] = {}
        for ann in _coco_annotations(data, labels):
            by_image.setdefault(ann.get("image_id"), []).append(ann)
        infos = _records(data, "images")
    except MALFORMED as e:
        yield Problem(annotation_file.name, _malformed(e))
        return
    if not infos:
        yield Problem(annotation_file.name, "lists no images")
    for info in infos:
        source = f"{annotation_file.name}#{info.get('id')}"
        try:
            name = _safe_name(info.get("file_name"))
            anns = by_image.get(info.get("id"), [])
            item: Item = Annotation(Path(name).stem, images / name, Path(name).suffix, _coco_raster(anns),
                                    "rle" if any(isinstance(a.get("segmentation"), dict) for a in anns)
                                    else "polygon", source, (int(info.get("height", 0)), int(info.get("width", 0))))
        except MALFORMED as e:
            item = Problem(source, _malformed(e))
        yield item


def _coco_annotations(data: dict, labels: set[str] | None) -> list[dict]:
    """The annotations of the chosen categories: by default 'person' when the file has it, else
    every category (and every annotation when the file lists no categories)."""
    categories = {c["id"]: str(c["name"]) for c in _records(data, "categories")}
    if labels is None:
        labels = {"person"} if "person" in categories.values() else set(categories.values())
    return [a for a in _records(data, "annotations")
            if not categories or categories.get(a.get("category_id")) in labels]


def _safe_name(value: object) -> str:
    """An image file name from an annotation: a plain name, never a path out of the folder."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("no image file name")
    if Path(value).is_absolute() or ".." in Path(value).parts:
        raise ValueError(f"image file name {value!r} points outside the images folder")
    return value


def _coco_raster(anns: list[dict]) -> Callable[[int, int], np.ndarray]:
    def raster(height: int, width: int) -> np.ndarray:
        mask = np.zeros((height, width), np.uint8)
        for ann in anns:
            seg = ann.get("segmentation")
            if isinstance(seg, dict):
                mask[rle.decode(seg, shape=mask.shape)] = 255
            elif isinstance(seg, list):
                polys = [np.asarray(p, np.float64).reshape(-1, 2) for p in seg]
                mask = np.maximum(mask, fill_polygons(polys)(height, width))
        return mask

    return raster


def read_supervisely(project: Path, labels: set[str] | None = None) -> Iterator[Item]:
    """A Supervisely project: <dataset>/img/<name> with <dataset>/ann/<name>.json (polygons with
    holes, and zlib+base64 PNG bitmaps placed at their origin)."""
    for ann_file in sorted(project.glob("**/ann/*.json")):
        image = ann_file.parent.parent / "img" / ann_file.stem  # ann/<image name>.json
        data = _load_json(ann_file)
        if isinstance(data, Problem):
            yield data
            continue
        try:
            objects = [o for o in _records(data, "objects") if labels is None or o.get("classTitle") in labels]
            size = data.get("size", {})
            kinds = {o.get("geometryType") for o in objects}
            item: Item = Annotation(
                Path(ann_file.stem).stem, image, image.suffix, _supervisely_raster(objects),
                "bitmap" if "bitmap" in kinds else "polygon", str(ann_file.relative_to(project)),
                (int(size.get("height", 0)), int(size.get("width", 0))) if size else None)
        except MALFORMED as e:
            item = Problem(ann_file.name, _malformed(e))
        yield item


def _supervisely_raster(objects: list[dict]) -> Callable[[int, int], np.ndarray]:
    def raster(height: int, width: int) -> np.ndarray:
        mask = np.zeros((height, width), np.uint8)
        for obj in objects:
            kind = obj.get("geometryType")
            if kind == "polygon":
                points = obj.get("points", {})
                polygon = fill_polygons([points.get("exterior", [])], points.get("interior", []))
                mask = np.maximum(mask, polygon(height, width))
            elif kind == "bitmap":
                bitmap = obj["bitmap"]
                part = _decode_bitmap(bitmap["data"], (height, width))
                x, y = (int(v) for v in bitmap["origin"])
                if x < 0 or y < 0:
                    raise ValueError(f"bitmap origin {x},{y} is outside the image")
                h, w = part.shape
                region = mask[y:y + h, x:x + w]
                region[part[:region.shape[0], :region.shape[1]]] = 255
            else:
                raise ValueError(f"unsupported geometryType {kind!r}")
        return mask

    return raster


def _decode_bitmap(data: str, image_size: tuple[int, int], max_bytes: int = 64 << 20) -> np.ndarray:
    """Supervisely bitmap: base64 of zlib-compressed PNG; alpha (or gray) > 0 is the object. A bitmap
    larger than the image it belongs to, image_size=(h, w), is refused before it is decoded."""
    inflater = zlib.decompressobj()
    raw = inflater.decompress(base64.b64decode(data, validate=True), max_bytes)
    if inflater.unconsumed_tail:
        raise ValueError(f"bitmap inflates to more than {max_bytes >> 20} MB")
    if raw[:8] != b"\x89PNG\r\n\x1a\n" or len(raw) < 24:
        raise ValueError("bitmap is not a PNG")
    width, height = struct.unpack(">II", raw[16:24])  # the IHDR chunk: the PNG's size, before decoding
    if height > image_size[0] or width > image_size[1]:
        raise ValueError(f"bitmap is {width}x{height}, larger than the image ({image_size[1]}x{image_size[0]})")
    png = np.frombuffer(raw, np.uint8)
    image = cv2.imdecode(png, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("bitmap is not a PNG")
    return (image[..., 3] if image.ndim == 3 and image.shape[2] == 4 else
            image if image.ndim == 2 else image[..., 0]) > 0


def read_labelme(folder: Path, labels: set[str] | None = None) -> Iterator[Item]:
    """LabelMe JSON files: polygons and rectangles of the chosen labels; the image is the file
    named by imagePath beside the JSON, or the embedded imageData."""
    for ann_file in sorted(folder.glob("*.json")):
        data = _load_json(ann_file)
        if isinstance(data, Problem):
            yield data
            continue
        try:
            image_name = _safe_name(data.get("imagePath") or f"{ann_file.stem}.jpg")
            image: Path | bytes = ann_file.parent / image_name
            if not image.is_file() and data.get("imageData"):
                image = base64.b64decode(data["imageData"], validate=True)
            declared = (int(data.get("imageHeight", 0)), int(data.get("imageWidth", 0))) \
                if data.get("imageHeight") else None
            item: Item = Annotation(ann_file.stem, image, Path(image_name).suffix or ".jpg",
                                    _labelme_raster(_records(data, "shapes"), labels), "polygon", ann_file.name,
                                    declared)
        except MALFORMED as e:
            item = Problem(ann_file.name, _malformed(e))
        yield item


def _labelme_raster(shapes: list[dict], labels: set[str] | None) -> Callable[[int, int], np.ndarray]:
    """Polygons and rectangles (two corners) of the chosen labels."""
    polygons = []
    for shape in shapes:
        if labels is not None and shape.get("label") not in labels:
            continue
        points = np.asarray(shape.get("points", []), np.float64).reshape(-1, 2)
        if shape.get("shape_type", "polygon") == "rectangle" and len(points) == 2:
            (x0, y0), (x1, y1) = points
            points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        polygons.append(points)
    return fill_polygons(polygons)


def _load_json(path: Path) -> dict | Problem:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return Problem(path.name, f"larger than {MAX_JSON_BYTES // 1024**2} MB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return Problem(path.name, f"not readable JSON ({e})")
    return data if isinstance(data, dict) else Problem(path.name, "JSON is not an object")


# --- validation and import ------------------------------------------------------------------

def image_bytes_and_size(image: Path | bytes, name: str, max_side: int | None = None) -> tuple[bytes, tuple[int, int]]:
    """The encoded image and its (h, w) after EXIF orientation; ImageLoadError if unusable. It is
    decoded once to check it, unless its long side is above max_side: shrink_pair decodes it then,
    at a reduced scale."""
    if isinstance(image, Path):
        if not image.is_file():
            raise ImageLoadError(f"{name}: image file not found")
        data = image.read_bytes()
    else:
        data = image
    size = image_size(io.BytesIO(data))
    if not (max_side and max(size) > max_side):
        open_image(io.BytesIO(data)).close()
    return data, size


def import_into(dataset: Dataset, items: Iterable[Item], split: str = "train",
                max_side: int | None = None) -> ImportReport:
    """Validate and add every annotation; problems are collected, never raised. Saves the manifest.
    With max_side, larger photos are shrunk with their masks as they are added."""
    report = ImportReport()
    for item in items:
        if isinstance(item, Problem):
            report.problems.append(item)
            continue
        name = item.image.name if isinstance(item.image, Path) else f"{item.sample_id} (embedded image)"
        try:
            if item.sample_id in dataset.samples:
                raise ValueError(f"sample id {item.sample_id!r} already in the dataset")
            data, size = image_bytes_and_size(item.image, name, max_side)
            if item.declared_size and item.declared_size != size:
                raise ValueError(f"annotation says {item.declared_size[1]}x{item.declared_size[0]}, "
                                 f"image is {size[1]}x{size[0]}")
            mask = item.mask(*size) if callable(item.mask) else item.mask
            if mask.shape != size:
                raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, image is {size[1]}x{size[0]}")
            if not mask.any():
                raise ValueError("mask is empty (no person pixels)")
            soft = cv2.countNonZero(cv2.inRange(mask, 1, 254)) > 0  # values between 0 and 255, before shrinking
            suffix, note = item.image_suffix or ".jpg", ""
            if max_side and max(size) > max_side:
                data, suffix, mask = shrink_pair(data, suffix, mask, max_side)
                note = f"shrunk from {size[1]}x{size[0]} to long side {max_side}"
                report.shrunk.append(item.sample_id)
            dataset.add(item.sample_id, data, suffix, mask, split=split, source=item.source, kind=item.kind,
                        note=note)
            report.imported.append(item.sample_id)
            if soft:
                report.soft.append(item.sample_id)
        except ImageLoadError as e:
            report.problems.append(Problem(name, str(e).split(": ", 1)[-1]))
        except (*MALFORMED, DatasetError) as e:
            report.problems.append(Problem(f"{name} ({item.source})", str(e)))
    dataset.save()
    return report


def mask_from_annotation_file(path: Path, height: int, width: int, labels: set[str] | None = None) -> np.ndarray:
    """One image's annotation as a (height, width) uint8 mask, from a mask image or a LabelMe,
    Supervisely or COCO JSON file (COCO: every segment of the file's first image). ValueError
    with a clear message when the file is unusable."""
    if path.suffix.lower() != ".json":
        try:
            mask = read_mask(path)
        except DatasetError as e:
            raise ValueError(str(e)) from e
    else:
        data = _load_json(path)
        if isinstance(data, Problem):
            raise ValueError(str(data))
        try:
            mask = _raster_json(data, labels)(height, width)
        except MALFORMED as e:
            raise ValueError(f"{path.name}: {_malformed(e)}") from e
    if mask.shape != (height, width):
        raise ValueError(f"{path.name}: mask is {mask.shape[1]}x{mask.shape[0]}, photo is {width}x{height}")
    return mask


def _raster_json(data: dict, labels: set[str] | None) -> Callable[[int, int], np.ndarray]:
    if "shapes" in data:  # LabelMe
        return _labelme_raster(_records(data, "shapes"), labels)
    if "objects" in data:  # Supervisely
        return _supervisely_raster([o for o in _records(data, "objects")
                                    if labels is None or o.get("classTitle") in labels])
    if "annotations" in data:  # COCO
        images = _records(data, "images")
        first = images[0].get("id") if images else None
        return _coco_raster([a for a in _coco_annotations(data, labels) if first is None or a.get("image_id") == first])
    raise ValueError("JSON is neither LabelMe (shapes), Supervisely (objects) nor COCO (annotations)")
