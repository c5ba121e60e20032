"""COCO run-length encoding (column-major runs, starting with background), plain and compressed."""
from __future__ import annotations

import numpy as np


def encode_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a binary (H,W) mask in column-major order, the first run being 0s."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return counts


def decode_counts(counts: list[int], height: int, width: int) -> np.ndarray:
    total = sum(counts)
    if total != height * width or min(counts, default=0) < 0:
        raise ValueError(f"RLE covers {total} pixels, the image has {height * width}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    return np.repeat(values, counts).reshape((height, width), order="F")


def compress(counts: list[int]) -> str:
    """pycocotools' string form: each count (after the 3rd, as a delta to the one two before) in
    5-bit groups, little end first, 0x20 = more groups follow, offset by 48 into printable ASCII."""
    out = []
    for i, value in enumerate(counts):
        x = value - counts[i - 2] if i > 2 else value
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = not ((c & 0x10 == 0 and x == 0) or (c & 0x10 and x == -1))
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def decompress(text: str) -> list[int]:
    counts: list[int] = []
    position = 0
    while position < len(text):
        x, shift, more = 0, 0, True
        while more:
            if position >= len(text):
                raise ValueError("truncated compressed RLE string")
            c = ord(text[position]) - 48
            x |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            position += 1
            shift += 1
            if not more and c & 0x10:
                x |= -1 << (5 * shift)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode(rle: dict, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A COCO RLE dict {"size": [h, w], "counts": str | list} -> bool (H,W).

    With `shape`, an RLE of another size is refused before anything is allocated.
    """
    height, width = (int(v) for v in rle["size"])
    if shape is not None and (height, width) != tuple(shape):
        raise ValueError(f"RLE size {height}x{width} differs from the image {shape[0]}x{shape[1]}")
    counts = rle["counts"]
    if isinstance(counts, (bytes, str)):
        counts = decompress(counts.decode("ascii") if isinstance(counts, bytes) else counts)
    return decode_counts(list(counts), height, width)


def encode(mask: np.ndarray) -> dict:
    """bool (H,W) -> compressed COCO RLE dict."""
    height, width = mask.shape
    return {"size": [height, width], "counts": compress(encode_counts(mask))}
