"""Refinement proposals kept on disk: ranking a dataset computes each once, and every later look
at a sample reads it back instead of running the model and the matting again.

One compressed .npz per proposal (120-170 KB for an 800x600 photo), named by the SHA-256 of the
photo's and the annotation's bytes, the method, its parameters and the weights' name: a new
annotation (after a decision) or other parameters make a new entry, never a stale hit.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from banet.masks import person

from .atomic import write_bytes
from .dataset import Dataset, DatasetError, Sample
from .refine import METHOD, RefineParams, Refinement


class ProposalCache:
    """Proposals under `folder`; unreadable entries count as missing and are recomputed."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(dataset: Dataset, sample: Sample, params: RefineParams, model: str) -> str:
        digest = hashlib.sha256()
        for path in (dataset.image_path(sample), dataset.mask_path(sample)):
            try:
                digest.update(path.read_bytes())
            except OSError as e:
                raise DatasetError(f"{sample.id}: cannot read {path.name} ({e.strerror or e})") from e
        digest.update(json.dumps({"method": METHOD, "params": asdict(params), "model": model}, sort_keys=True).encode())
        return digest.hexdigest()

    def get(self, key: str, params: RefineParams) -> Refinement | None:
        path = self.folder / f"{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as f:
                shape = tuple(int(n) for n in f["shape"])
                mask, band = (np.unpackbits(f[name], count=shape[0] * shape[1]).reshape(shape).astype(bool)
                              for name in ("mask", "band"))
                return Refinement(f["alpha"], mask.astype(np.uint8) * 255, band, int(f["band_px"]),
                                  float(f["confidence"]), bool(f["changed"]), params)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # missing, truncated, foreign
            return None

    def put(self, key: str, refinement: Refinement) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, alpha=refinement.alpha, shape=np.array(refinement.mask.shape),
                            mask=np.packbits(person(refinement.mask)), band=np.packbits(refinement.band),
                            band_px=refinement.band_px, confidence=refinement.confidence, changed=refinement.changed)
        write_bytes(self.folder / f"{key}.npz", buffer.getvalue())

    def refinement(self, dataset: Dataset, sample: Sample, params: RefineParams, model: str,
                   compute: Callable[[], Refinement]) -> Refinement:
        """The sample's proposal: from the cache, else `compute()`d (e.g. `refine.refine_sample`) and kept.
        A caller that already holds the photo and the model's confidence computes from them."""
        key = self.key(dataset, sample, params, model)
        cached = self.get(key, params)
        if cached is not None:
            return cached
        result = compute()
        self.put(key, result)
        return result
