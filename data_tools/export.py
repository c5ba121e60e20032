"""Export a dataset: paired folders, a COCO file with RLE masks, or a zip of the whole dataset.

    python -m data_tools.export DATASET OUT --format folder [--split train] [--binary]
    python -m data_tools.export DATASET annotations.json --format coco
    python -m data_tools.export DATASET dataset.zip --format zip
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path, PurePath

import numpy as np
from tqdm import tqdm

from banet.masks import person

from . import rle
from .atomic import atomic_path, write_text
from .dataset import MANIFEST, Dataset, DatasetError, Sample, encode_mask, manifest_text

FORMATS = ("folder", "coco", "zip")


def export_folder(dataset: Dataset, out: Path, splits: list[str] | None = None, binary: bool = False) -> int:
    """images/ + masks/ of the chosen splits at `out`; see write_folder."""
    return write_folder(dataset, dataset.select(splits), out, binary)


def write_folder(dataset: Dataset, samples: list[Sample], out: Path, binary: bool = False) -> int:
    """images/ + masks/ at `out`, built in a temporary sibling folder and renamed into place."""
    if out.exists():
        raise DatasetError(f"{out}: already exists; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "images").mkdir()
        (staging / "masks").mkdir()
        for sample in tqdm(samples, desc="export", unit="img", leave=False):
            shutil.copyfile(dataset.image_path(sample), staging / "images" / Path(sample.image).name)
            mask = dataset.read_mask(sample)
            if binary:
                mask = np.where(person(mask), 255, 0).astype(np.uint8)
            (staging / "masks" / f"{sample.id}.png").write_bytes(encode_mask(mask))
        staging.chmod(0o755)
        staging.rename(out)
        return len(samples)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def coco_document(dataset: Dataset, splits: list[str] | None = None) -> dict:
    """COCO instances with one 'person' annotation per image, compressed RLE of its person pixels."""
    images, annotations = [], []
    for number, sample in enumerate(tqdm(dataset.select(splits), desc="coco", unit="img", leave=False), 1):
        mask = person(dataset.read_mask(sample))
        ys, xs = np.nonzero(mask)
        bbox = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1] if xs.size else [0, 0, 0, 0]
        images.append({"id": number, "file_name": Path(sample.image).name,
                       "height": mask.shape[0], "width": mask.shape[1]})
        annotations.append({"id": number, "image_id": number, "category_id": 1, "iscrowd": 0,
                            "segmentation": rle.encode(mask), "area": int(mask.sum()), "bbox": bbox})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}


def public_source(source: str) -> str:
    """A sample's source as it may leave this machine: an absolute path (datasets imported before
    sources were kept relative) is cut to its file name and folder."""
    path = PurePath(source)
    return "/".join(path.parts[-2:]) if path.is_absolute() else source


def export_zip(dataset: Dataset, out: Path, splits: list[str] | None = None) -> int:
    """The dataset format (images/, masks/, manifest.jsonl) in one zip, written atomically."""
    samples = dataset.select(splits)
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, manifest_text(replace(s, source=public_source(s.source)) for s in samples))
        for sample in tqdm(samples, desc="zip", unit="img", leave=False):
            archive.write(dataset.image_path(sample), sample.image, compress_type=zipfile.ZIP_STORED)
            archive.write(dataset.mask_path(sample), sample.mask)
    return len(samples)


DOWNLOADS = {"dataset": "this dataset format (images/, masks/, manifest.jsonl with history)",
             "coco": "COCO: images/ + annotations.json with RLE masks",
             "folders": "images/ + masks/ (PNG masks, soft values kept)"}


def export_download(dataset: Dataset, out: Path, kind: str) -> int:
    """One zip for a browser download, in one of DOWNLOADS' formats, written atomically."""
    if kind == "dataset":
        return export_zip(dataset, out)
    if kind not in DOWNLOADS:
        raise DatasetError(f"unknown export format {kind!r}; choose from {', '.join(DOWNLOADS)}")
    samples = dataset.select(None)
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for sample in tqdm(samples, desc="zip", unit="img", leave=False):
            archive.write(dataset.image_path(sample), f"images/{Path(sample.image).name}",
                          compress_type=zipfile.ZIP_STORED)
            if kind == "folders":
                archive.writestr(f"masks/{sample.id}.png", encode_mask(dataset.read_mask(sample)))
        if kind == "coco":
            archive.writestr("annotations.json", json.dumps(coco_document(dataset)))
    return len(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_tools.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path, help="new folder (folder), .json file (coco) or .zip file (zip)")
    parser.add_argument("--format", choices=FORMATS, default="folder")
    parser.add_argument("--split", action="append", help="only these splits (repeatable); default all")
    parser.add_argument("--binary", action="store_true", help="folder format: threshold soft masks at 128")
    args = parser.parse_args(argv)
    try:
        dataset = Dataset.open(args.dataset)
        if args.format == "folder":
            count = export_folder(dataset, args.out, args.split, args.binary)
        elif args.format == "coco":
            document = coco_document(dataset, args.split)
            write_text(args.out, json.dumps(document))
            count = len(document["images"])
        else:
            count = export_zip(dataset, args.out, args.split)
    except DatasetError as e:
        parser.error(str(e))
    print(f"exported {count} samples to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
