"""Turn any user image (path, PIL image or array, any mode) into an RGB uint8 array."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageInput = str | os.PathLike | BinaryIO | Image.Image | np.ndarray
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # photo files, by name
MAX_PIXELS = 64_000_000  # larger images are refused as likely decompression bombs


REDUCIBLE = ("L", "LA", "RGB", "RGBA", "I", "F")  # modes PIL's Image.reduce takes as they are


class ImageLoadError(ValueError):
    """An input could not be read as an image; the message names the input and the reason."""


def photo_files(folder: str | os.PathLike) -> list[Path]:
    """The photos of a folder, or of its images/ subfolder if it has one, sorted by name."""
    folder = Path(folder)
    folder = folder / "images" if (folder / "images").is_dir() else folder
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale 16-bit, 32-bit integer and float arrays to uint8 (floats are taken as 0..1)."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return (a >> 8).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):  # other integer arrays: 16-bit range
        return (np.clip(a, 0, 65535) >> 8).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        return (np.clip(np.nan_to_num(a), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    raise ImageLoadError(f"unsupported pixel type {a.dtype}")


def array_to_rgb(a: np.ndarray) -> np.ndarray:
    """(H,W), (H,W,1), (H,W,3) or (H,W,4) array of any numeric type -> (H,W,3) uint8; alpha is dropped."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or 0 in a.shape:
        raise ImageLoadError(f"expected an (H,W), (H,W,3) or (H,W,4) array, got shape {a.shape}")
    return np.ascontiguousarray(_to_uint8(a[..., :3]))


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Honour EXIF orientation, then convert any PIL mode (L, P, RGBA, CMYK, I;16, F...) to RGB uint8."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I;16"):
        return array_to_rgb(np.asarray(image))
    if image.mode in ("I", "F"):  # 32-bit: 16-bit data from some PNG decoders, else 8-bit levels
        a = np.asarray(image, dtype=np.float64)
        return array_to_rgb(a / (65535.0 if a.max() > 255 else 255.0))
    return np.array(image.convert("RGB"))  # a writable copy


def working_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) with the long side scaled to `long_side`, aspect kept."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def open_image(path: str | os.PathLike | BinaryIO, decode: bool = True,
               max_side: int | None = None) -> Image.Image:
    """Open an image file (or binary stream) and decode it, or raise ImageLoadError naming it. The size
    is checked against MAX_PIXELS before anything is decoded. decode=False reads the header only;
    max_side lets a JPEG decode at a reduced DCT scale (at least max_side on its long side)."""
    name = Path(path).name if isinstance(path, (str, os.PathLike)) else "image data"
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = Image.open(path)
        if image.width * image.height > MAX_PIXELS:
            raise ImageLoadError(f"{name}: {image.width}x{image.height} exceeds the {MAX_PIXELS} pixel limit")
        if max_side and image.format == "JPEG":
            image.draft("RGB", (max_side, max_side))
        if decode:
            image.load()
        return image
    except ImageLoadError:
        raise
    except FileNotFoundError as e:
        raise ImageLoadError(f"{name}: file not found") from e
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ImageLoadError(f"{name}: not a readable image ({e.__class__.__name__})") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"{name}: corrupt or truncated image ({e})") from e


def load_rgb(source: ImageInput, max_side: int | None = None) -> np.ndarray:
    """Any supported input -> (H,W,3) uint8 RGB array; with max_side, one whose long side is larger
    is shrunk to it (a JPEG file as it is decoded, so its full size is never held)."""
    if isinstance(source, np.ndarray):
        rgb = array_to_rgb(source)
    elif isinstance(source, Image.Image):
        rgb = pil_to_rgb(source)
    elif isinstance(source, (str, os.PathLike)) or hasattr(source, "read"):
        with open_image(source, max_side=max_side) as image:
            rgb = pil_to_rgb(_reduced(image, max_side) if max_side else image)
    else:
        raise ImageLoadError(f"unsupported input type {type(source).__name__}")
    return shrink_to(rgb, max_side) if max_side else rgb


def _reduced(image: Image.Image, long_side: int) -> Image.Image:
    """A decoded image box-averaged by a whole factor to at least `long_side`, EXIF kept, so that a
    huge photo is never converted (and copied) at full size; shrink_to finishes the job."""
    factor = max(image.size) // long_side
    if factor < 2 or image.mode.startswith("I;16"):  # 16-bit: pil_to_rgb scales it, convert() would clip
        return image
    if image.mode not in REDUCIBLE:
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    small = image.reduce(factor)
    small.info = dict(image.info)  # the EXIF orientation, applied by pil_to_rgb
    return small


def shrink_to(a: np.ndarray, long_side: int) -> np.ndarray:
    """`a` with its long side at most `long_side` (area interpolation), or `a` itself when it fits."""
    if max(a.shape[:2]) <= long_side:
        return a
    h, w = working_size(*a.shape[:2], long_side)
    return cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)


def image_size(path: str | os.PathLike | BinaryIO) -> tuple[int, int]:
    """(h, w) of an image file as load_rgb returns it (EXIF orientation applied), from its header."""
    with open_image(path, decode=False) as image:
        width, height = image.size
        if _header_exif(image).get(0x0112, 1) in (5, 6, 7, 8):  # orientations that swap width and height
            width, height = height, width
    return height, width


def _header_exif(image: Image.Image) -> Image.Exif:
    """The EXIF found before the pixel data: PNG's getexif() would decode the whole image to look
    for an eXIf chunk after it."""
    if image.format != "PNG":
        return image.getexif()
    exif = Image.Exif()
    if "exif" in image.info:
        exif.load(image.info["exif"])
    return exif


def cover_crop(a: np.ndarray, size: tuple[int, int], interpolation: int | None = None) -> np.ndarray:
    """Scale `a` to cover size=(h, w) keeping its aspect, then centre-crop. Default interpolation:
    area when shrinking, bilinear when enlarging."""
    h, w = size
    scale = max(h / a.shape[0], w / a.shape[1])
    if interpolation is None:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    rh, rw = max(h, round(a.shape[0] * scale)), max(w, round(a.shape[1] * scale))
    a = cv2.resize(a, (rw, rh), interpolation=interpolation)
    top, left = (rh - h) // 2, (rw - w) // 2
    return np.ascontiguousarray(a[top:top + h, left:left + w])
