"""Write a smaller copy of a dataset (long side at most N pixels), e.g. to carry to a GPU machine;
a folder of photos without masks (person-free backgrounds) is copied photo by photo, names kept.

    python -m data_tools.resize SRC DEST --long-side 512
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from banet.image_io import ImageLoadError, load_rgb, photo_files, shrink_to

from .dataset import MANIFEST, Dataset, DatasetError, Revision, Sample, now


def encode_image(rgb: np.ndarray, suffix: str, quality: int = 95) -> tuple[bytes, str]:
    """JPEG for JPEG sources, PNG otherwise; returns (bytes, suffix)."""
    jpeg = suffix.lower() in (".jpg", ".jpeg")
    ext = ".jpg" if jpeg else ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if jpeg else []
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise DatasetError(f"could not encode {ext}")
    return data.tobytes(), ext


def shrink_pair(image_bytes: bytes, suffix: str, mask: np.ndarray, long_side: int) -> tuple[bytes, str, np.ndarray]:
    """An encoded photo and its mask (same size) with the long side at most `long_side`; returned as
    they are when they fit. A JPEG is decoded at a reduced scale, never at full size."""
    if max(mask.shape) <= long_side:
        return image_bytes, suffix, mask
    data, suffix = encode_image(load_rgb(io.BytesIO(image_bytes), long_side), suffix)
    return data, suffix, shrink_to(mask, long_side)


def shrink_sample(dataset: Dataset, sample: Sample, long_side: int) -> bool:
    """Shrink a sample larger than `long_side` in place, photo and mask; the history records it.
    Returns whether it was shrunk; call dataset.save() afterwards."""
    mask = dataset.read_mask(sample)
    if max(mask.shape) <= long_side:
        return False
    try:
        data, suffix, small = shrink_pair(dataset.image_path(sample).read_bytes(), Path(sample.image).suffix,
                                          mask, long_side)
    except (OSError, ImageLoadError) as e:
        raise DatasetError(f"{sample.image}: {e}") from e
    dataset.set_image(sample.id, data, suffix)
    dataset.set_mask(sample.id, small, "resize", note=f"long side {long_side}")
    return True


def check_settings(long_side: int, quality: int) -> None:
    if long_side < 32:
        raise ValueError("--long-side must be at least 32")
    if not 1 <= quality <= 100:
        raise ValueError("--quality must be between 1 and 100")


def resize_dataset(source: Dataset, dest: Path, long_side: int, quality: int = 95) -> Dataset:
    """A new dataset at `dest` with every image and mask shrunk; history and splits carried over."""
    check_settings(long_side, quality)
    out = Dataset.create(dest)
    for sample in tqdm(list(source), desc="resize", unit="img"):
        data, suffix = encode_image(shrink_to(source.read_image(sample), long_side), Path(sample.image).suffix,
                                    quality)
        mask = shrink_to(source.read_mask(sample), long_side)
        added = out.add(sample.id, data, suffix, mask, split=sample.split, source=sample.source,
                        kind=sample.kind)
        sha = added.history[0].sha256
        added.history = sample.history + [Revision("resize", sha, now(), f"long side {long_side}")]
    out.save()
    return out


def is_photo_folder(folder: Path) -> bool:
    """Photos without masks: neither a manifest nor a masks/ folder (a broken dataset is not one)."""
    return not (folder / MANIFEST).exists() and not (folder / "masks").exists()


def resize_photos(source: Path, dest: Path, long_side: int, quality: int = 95) -> int:
    """Shrunk copies of the photos in `source` (or its images/) under the same stems in `dest`;
    returns how many were written. For photo folders without masks, e.g. backgrounds."""
    check_settings(long_side, quality)
    photos = photo_files(source) if source.is_dir() else []
    if not photos:
        raise DatasetError(f"{source}: neither a dataset nor a folder of photos")
    dest.mkdir(parents=True, exist_ok=True)
    for path in tqdm(photos, desc="resize", unit="img"):
        try:
            data, suffix = encode_image(load_rgb(path, long_side), path.suffix, quality)
        except (OSError, ImageLoadError) as e:
            raise DatasetError(f"{path.name}: {e}") from e
        (dest / f"{path.stem}{suffix}").write_bytes(data)
    return len(photos)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_tools.resize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path, help="new dataset folder")
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the copies (1-100)")
    args = parser.parse_args(argv)
    try:
        if is_photo_folder(args.source):
            count = resize_photos(args.source, args.dest, args.long_side, args.quality)
            print(f"wrote {count} photos to {args.dest}")
        else:
            out = resize_dataset(Dataset.open(args.source), args.dest, args.long_side, args.quality)
            print(f"wrote {len(out)} samples to {args.dest}")
    except (DatasetError, ValueError) as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
