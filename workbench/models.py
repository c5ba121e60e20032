"""Predictors by weights name, loaded once and shared read-only by every session."""
from __future__ import annotations

import threading
from collections import OrderedDict

from banet import Predictor, load_model
from banet.backends import make_backend
from banet.upsampling import UPSAMPLING


class Predictors:
    """Least-recently-used cache: a session that switches to its fine-tuned weights loads them once."""

    def __init__(self, limit: int = 4, upsampling: str = UPSAMPLING[0]) -> None:
        self.limit = limit
        self.upsampling = upsampling
        self._cache: OrderedDict[str, Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, weights: str) -> Predictor:
        with self._lock:
            if weights in self._cache:
                self._cache.move_to_end(weights)
                return self._cache[weights]
        # WeightsError for a bad folder, outside the lock; ONNX Runtime's threads do not spin after a
        # call, so that the panels drawn next have the cores (Inspect about 20 ms faster on 2 cores)
        predictor = Predictor(make_backend(load_model(weights), spin=False), upsampling=self.upsampling)
        with self._lock:
            self._cache[weights] = predictor
            while len(self._cache) > self.limit:
                self._cache.popitem(last=False)
        return predictor
