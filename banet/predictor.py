"""High-level inference: any image in, confidence / mask / attention / gradients out at its resolution."""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

from .backends import Backend, make_backend
from .gradients import Gradients, map_gradients, photo_gradients
from .image_io import ImageInput, load_rgb, working_size
from .model import BANet, PAD_MULTIPLE
from .upsampling import UPSAMPLING, GuidedFilter, guided_filter, guided_upsample, upsample


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
    """Everything at the input image's resolution (H, W). The maps are computed at the working size
    and upsampled on first use, so a caller pays only for what it reads."""

    image: np.ndarray  # (H,W,3) uint8, EXIF-rotated RGB as the model saw it
    working_confidence: np.ndarray = field(repr=False)  # (h,w) float32 at the working size
    working_attention: np.ndarray | None = field(repr=False)
    threshold: float
    seconds: float  # model time for this image (its share of the batch)
    working_image: np.ndarray | None = field(default=None, repr=False)  # (h,w,3) uint8: guides the upsampling
    guide: GuidedFilter | None = None  # None: bilinear upsampling (see banet.upsampling)

    @cached_property
    def confidence(self) -> np.ndarray:
        """(H,W) float32 in [0,1]: edge-aware (guided by the photo) when `guide` is set, else bilinear."""
        if self.guide is None or self.working_image is None:
            return upsample(self.working_confidence, self.image.shape[:2])
        return guided_upsample(self.working_confidence, self.working_image, self.image, self.guide)

    @cached_property
    def attention(self) -> np.ndarray | None:
        """(H,W) float32 boundary attention map; None for a base model."""
        return None if self.working_attention is None else upsample(self.working_attention, self.image.shape[:2])

    @property
    def mask(self) -> np.ndarray:
        """Binary person mask (H,W) bool."""
        return self.confidence >= self.threshold

    def resized(self, long_side: int, threshold: float | None = None) -> Prediction:
        """This prediction for a copy of the photo with its long side at most `long_side` (for
        display): every map is then upsampled from the working size straight to that size."""
        h, w = self.image.shape[:2]
        image = self.image if max(h, w) <= long_side else shrink(self.image, working_size(h, w, long_side))
        return Prediction(image, self.working_confidence, self.working_attention,
                          self.threshold if threshold is None else threshold, self.seconds,
                          self.working_image, self.guide)

    @property
    def image_gradient(self) -> GradientField:
        return _field(photo_gradients(self.image))

    @property
    def prediction_gradient(self) -> GradientField:
        return _field(map_gradients(self.confidence))


def _field(g: Gradients) -> GradientField:
    return GradientField(g.gx[0, 0].numpy(), g.gy[0, 0].numpy())


def shrink(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a photo to size=(h, w) as training sees photos: halved by area averaging while at least
    twice the target, then bilinear (training stores photos at about twice the canvas and warps them
    bilinearly). Suite IoU within 0.5 of one area resize in every domain, at a tenth of its time."""
    h, w = size
    while rgb.shape[0] >= 2 * h and rgb.shape[1] >= 2 * w:
        rgb = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)


def _pad(a: np.ndarray) -> np.ndarray:
    """Replicate-pad (H,W,C) bottom/right to multiples of PAD_MULTIPLE."""
    h, w = a.shape[:2]
    return cv2.copyMakeBorder(a, 0, -h % PAD_MULTIPLE, 0, -w % PAD_MULTIPLE, cv2.BORDER_REPLICATE)


def prepare_batch(rgbs: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Photos -> the backends' input: shrunk to size=(h, w), padded, float32 (N,3,H,W) in [0,1]."""
    return to_batch([shrink(rgb, size) for rgb in rgbs])


def to_batch(shrunk: Sequence[np.ndarray]) -> np.ndarray:
    """Photos already at one working size -> padded float32 (N,3,H,W) in [0,1]."""
    batch = np.stack([_pad(rgb) for rgb in shrunk]).transpose(0, 3, 1, 2)
    return np.multiply(batch, np.float32(1 / 255), dtype=np.float32, order="C")


class Predictor:
    """Portrait segmentation with a BANet model or a ready backend.

    `input_size` is the long side the image is resized to before inference (default: the weights'
    `input_size`, set by training); outputs are resized back to the input's resolution, the
    confidence by `upsampling`: "bilinear" (default) or "guided" (a guided filter puts its edges on
    the photo's edges, for about 1-3 ms more per call at 600x800; `banet.upsampling`). `backend` ("auto",
    "onnxruntime", "torch") applies to a BANet model: "auto" runs ONNX Runtime on a CPU and
    PyTorch on a GPU (`banet.backends.make_backend`).

    Example:
        >>> predictor = Predictor(load_model("banet-64"))
        >>> predictor("photo.jpg").mask.mean()  # share of the photo covered by people
    """

    def __init__(self, model: BANet | Backend, *, device: str = "auto", backend: str = "auto",
                 input_size: int | None = None, threshold: float = 0.5, batch_size: int = 8,
                 upsampling: str = UPSAMPLING[0]) -> None:
        self.guide = guided_filter(upsampling)
        self.backend: Backend = make_backend(model, backend, device) if isinstance(model, BANet) else model
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
        shrunk = [shrink(rgb, size) for rgb in rgbs]
        batch = to_batch(shrunk)
        start = time.perf_counter()
        confidence, attention = self.backend(batch)
        seconds = (time.perf_counter() - start) / len(rgbs)
        h, w = size
        return [Prediction(rgb, confidence[i, 0, :h, :w], None if attention is None else attention[i, 0, :h, :w],
                           self.threshold, seconds, shrunk[i] if self.guide else None, self.guide)
                for i, rgb in enumerate(rgbs)]
