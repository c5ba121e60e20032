"""Training data held in memory: photos decoded and downscaled once, augmented online (paper §4)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from banet.image_io import cover_crop
from banet.targets import boundary_band
from data_tools.dataset import Dataset, Sample

from .config import TrainConfig


@dataclass
class ArraySet:
    """Images (N,H,W,3) uint8 and masks (N,H,W) uint8 0..255 at the training canvas size."""

    images: np.ndarray
    masks: np.ndarray
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Sequence[int]) -> ArraySet:
        idx = np.asarray(indices, dtype=np.int64)
        return ArraySet(self.images[idx], self.masks[idx], [self.ids[i] for i in idx])


def load_arrays(folders: Sequence[str], size: tuple[int, int], desc: str = "decode") -> ArraySet:
    """Decode every sample of the dataset folders once, at the canvas size."""
    entries: list[tuple[Dataset, Sample]] = []
    for folder in folders:
        dataset = Dataset.open(folder)
        entries += [(dataset, s) for s in dataset]
    if not entries:
        raise ValueError(f"no samples in {', '.join(folders)}")
    images = np.empty((len(entries), *size, 3), np.uint8)
    masks = np.empty((len(entries), *size), np.uint8)
    for i, (dataset, sample) in enumerate(tqdm(entries, desc=desc, unit="img", leave=False)):
        images[i] = cover_crop(dataset.read_image(sample), size, cv2.INTER_AREA)
        masks[i] = cover_crop(dataset.read_mask(sample), size, cv2.INTER_AREA)
    return ArraySet(images, masks, [f"{d.root.name}/{s.id}" for d, s in entries])


def split_holdout(data: ArraySet, fraction: float, seed: int) -> tuple[ArraySet, ArraySet]:
    """(train, val): a fixed random `fraction` of the samples held out for validation curves."""
    order = np.random.default_rng(seed).permutation(len(data))
    n_val = int(round(len(data) * fraction))
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))


def augment(image: np.ndarray, mask: np.ndarray, config: TrainConfig,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation within ±rotation degrees, horizontal flip, lightness scaling (HLS L channel)."""
    h, w = mask.shape
    angle = rng.uniform(-config.rotation, config.rotation)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    border = cv2.BORDER_REFLECT_101 if config.border == "reflect" else cv2.BORDER_CONSTANT
    image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)
    mask = cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)
    if rng.random() < config.flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    hls = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HLS).astype(np.float32)
    hls[..., 1] *= rng.uniform(*config.lightness)
    image = cv2.cvtColor(np.clip(hls, 0, 255).astype(np.uint8), cv2.COLOR_HLS2RGB)
    return image, np.ascontiguousarray(mask)


def to_tensors(image: np.ndarray, mask: np.ndarray, band_width: float) -> tuple[torch.Tensor, ...]:
    """(image 3xHxW in [0,1], soft mask 1xHxW in [0,1], boundary band 1xHxW 0/1)."""
    band = boundary_band(mask, band_width)
    return (torch.from_numpy(image).permute(2, 0, 1).float().div_(255),
            torch.from_numpy(mask).float().div_(255)[None],
            torch.from_numpy(band).float()[None])


class AugmentedSet(torch.utils.data.Dataset):
    """Samples augmented with an RNG seeded by (seed, epoch, index): reproducible and resumable."""

    def __init__(self, data: ArraySet, config: TrainConfig) -> None:
        self.data, self.config = data, config

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        epoch, index = key
        rng = np.random.default_rng((self.config.seed, epoch, index))
        image, mask = augment(self.data.images[index], self.data.masks[index], self.config, rng)
        return to_tensors(image, mask, self.config.band_width)


class EpochKeys(torch.utils.data.Sampler):
    """Endless (epoch, index) keys in DistributedSampler's order, each epoch trimmed to whole batches.

    One DataLoader (and its worker processes) then serves the whole run; `skip` keys of the
    first epoch are left out so a resumed run continues exactly where it stopped.
    """

    def __init__(self, sampler: DistributedSampler, batch_size: int, epoch: int = 0, skip: int = 0) -> None:
        self.sampler, self.batch_size, self.epoch, self.skip = sampler, batch_size, epoch, skip

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, skip = self.epoch, self.skip
        while True:
            self.sampler.set_epoch(epoch)
            order = list(self.sampler)[:self.steps_per_epoch * self.batch_size]
            yield from ((epoch, index) for index in order[skip:])
            epoch, skip = epoch + 1, 0
