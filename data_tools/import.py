"""Import coarse annotations into a dataset (created if absent); bad files are listed and skipped.

    python -m data_tools.import DEST --folders IMAGES MASKS
    python -m data_tools.import DEST --coco instances.json IMAGES [--labels person]
    python -m data_tools.import DEST --supervisely PROJECT
    python -m data_tools.import DEST --labelme FOLDER
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .dataset import MANIFEST, Dataset, DatasetError
from .importers import import_into, read_coco, read_folders, read_labelme, read_supervisely


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_tools.import", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="dataset folder (created if absent)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--folders", nargs=2, type=Path, metavar=("IMAGES", "MASKS"),
                        help="paired folders: image <stem>.<ext> with mask <stem>.png")
    source.add_argument("--coco", nargs=2, type=Path, metavar=("JSON", "IMAGES"),
                        help="COCO instances file (polygons or RLE) and its image folder")
    source.add_argument("--supervisely", type=Path, metavar="PROJECT", help="Supervisely project folder")
    source.add_argument("--labelme", type=Path, metavar="FOLDER", help="folder of LabelMe JSON files")
    parser.add_argument("--labels", help="comma-separated labels that count as person (default: "
                        "COCO 'person' if present; otherwise every label)")
    parser.add_argument("--split", default="train", help="split given to the imported samples")
    args = parser.parse_args(argv)
    labels = set(args.labels.split(",")) if args.labels else None

    for folder in [p for p in (args.folders or []) + [args.supervisely, args.labelme] if p]:
        if not folder.is_dir():
            parser.error(f"{folder}: not a folder")
    if args.coco and not args.coco[0].is_file():
        parser.error(f"{args.coco[0]}: file not found")
    if args.folders:
        items = read_folders(*args.folders)
    elif args.coco:
        items = read_coco(args.coco[0], args.coco[1], labels)
    elif args.supervisely:
        items = read_supervisely(args.supervisely, labels)
    else:
        items = read_labelme(args.labelme, labels)
    try:
        dataset = Dataset.open(args.dest) if (args.dest / MANIFEST).is_file() else Dataset.create(args.dest)
    except DatasetError as e:
        parser.error(str(e))
    report = import_into(dataset, items, args.split)
    print(report.summary())
    return 0 if report.imported or not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
