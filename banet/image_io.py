"""Turn any user image (path, PIL image or array, any mode) into an RGB uint8 array."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageInput = str | os.PathLike | Image.Image | np.ndarray
MAX_PIXELS = 64_000_000  # larger images are refused as likely decompression bombs


class ImageLoadError(ValueError):
    """An input could not be read as an image; the message names the input and the reason."""


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


def open_image(path: str | os.PathLike | BinaryIO) -> Image.Image:
    """Open and fully decode an image file (or binary stream), or raise ImageLoadError naming it."""
    name = Path(path).name if isinstance(path, (str, os.PathLike)) else "image data"
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = Image.open(path)
        if image.width * image.height > MAX_PIXELS:
            raise ImageLoadError(f"{name}: {image.width}x{image.height} exceeds the {MAX_PIXELS} pixel limit")
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


def load_rgb(source: ImageInput) -> np.ndarray:
    """Any supported input -> (H,W,3) uint8 RGB array."""
    if isinstance(source, np.ndarray):
        return array_to_rgb(source)
    if isinstance(source, Image.Image):
        return pil_to_rgb(source)
    if isinstance(source, (str, os.PathLike)):
        with open_image(source) as image:
            return pil_to_rgb(image)
    raise ImageLoadError(f"unsupported input type {type(source).__name__}")


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
