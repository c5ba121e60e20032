"""High-level inference: any image in, confidence / mask / attention / gradients out at its resolution."""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .backends import Backend, TorchBackend
from .gradients import Gradients, map_gradients, photo_gradients
from .image_io import ImageInput, load_rgb
from .model import BANet

PAD_MULTIPLE = 32


@dataclass
class GradientField:
    """Sobel responses of a map (scaled so that a unit step has magnitude 1)."""

    gx: np.ndarray
    gy: np.ndarray

    @property
    def magnitude(self) -> np.ndarray:
        return np.hypot(self.gx, self.gy)

    @property
    def angle(self) -> np.ndarray:
        """Direction in radians, (-pi, pi]."""
        return np.arctan2(self.gy, self.gx)


@dataclass
class Prediction:
    """Everything at the input image's resolution (H, W)."""

    image: np.ndarray  # (H,W,3) uint8, EXIF-rotated RGB as the model saw it
    confidence: np.ndarray  # (H,W) float32 in [0,1]
    attention: np.ndarray | None  # (H,W) float32 boundary attention map; None for a base model
    threshold: float
    seconds: float  # model time for this image (its share of the batch)

    @property
    def mask(self) -> np.ndarray:
        """Binary person mask (H,W) bool."""
        return self.confidence >= self.threshold

    @property
    def image_gradient(self) -> GradientField:
        return _field(photo_gradients(self.image))

    @property
    def prediction_gradient(self) -> GradientField:
        return _field(map_gradients(self.confidence))


def _field(g: Gradients) -> GradientField:
    return GradientField(g.gx[0, 0].numpy(), g.gy[0, 0].numpy())


def working_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) with the long side scaled to `long_side`, aspect kept."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    shrinking = h * w < a.shape[0] * a.shape[1]
    return cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _pad(a: np.ndarray) -> np.ndarray:
    """Replicate-pad (H,W,C) bottom/right to multiples of PAD_MULTIPLE."""
    h, w = a.shape[:2]
    return cv2.copyMakeBorder(a, 0, -h % PAD_MULTIPLE, 0, -w % PAD_MULTIPLE, cv2.BORDER_REPLICATE)


class Predictor:
    """Portrait segmentation with a BANet model or an exported ONNX model.

    `input_size` is the long side the image is resized to before inference (default: the size
    the weights were trained at); outputs are resized back to the input's resolution.
    """

    def __init__(self, model: BANet | Backend, *, device: str = "auto",
                 input_size: int | None = None, threshold: float = 0.5, batch_size: int = 8) -> None:
        self.backend: Backend = TorchBackend(model, device) if isinstance(model, BANet) else model
        self.input_size = input_size or self.backend.input_size
        self.threshold = threshold
        self.batch_size = batch_size

    def __call__(self, image: ImageInput) -> Prediction:
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Iterable[ImageInput]) -> list[Prediction]:
        """Predict many images; images that share a working size run as one batch."""
        rgbs = [load_rgb(i) for i in images]
        sizes = [working_size(*rgb.shape[:2], self.input_size) for rgb in rgbs]
        results: list[Prediction | None] = [None] * len(rgbs)
        groups: dict[tuple[int, int], list[int]] = {}
        for index, size in enumerate(sizes):
            groups.setdefault(size, []).append(index)
        for size, indices in groups.items():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                for index, pred in zip(chunk, self._run(size, [rgbs[i] for i in chunk])):
                    results[index] = pred
        return results  # type: ignore[return-value]

    def _run(self, size: tuple[int, int], rgbs: Sequence[np.ndarray]) -> list[Prediction]:
        batch = np.stack([_pad(_resize(rgb, size)) for rgb in rgbs]).astype(np.float32) / 255.0
        start = time.perf_counter()
        confidence, attention = self.backend(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        seconds = (time.perf_counter() - start) / len(rgbs)
        h, w = size
        out = []
        for i, rgb in enumerate(rgbs):
            full = rgb.shape[:2]
            conf = np.clip(_resize(confidence[i, 0, :h, :w], full), 0.0, 1.0)
            att = None if attention is None else np.clip(_resize(attention[i, 0, :h, :w], full), 0.0, 1.0)
            out.append(Prediction(rgb, conf.astype(np.float32), att, self.threshold, seconds))
        return out
