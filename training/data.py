"""Training data held in memory: photos decoded and downscaled once, framed and augmented online.

Each sample is built from an RNG seeded by (seed, epoch, index): the paper's augmentation (§4:
rotation, flip, lightness) after a framing step that, with the people recipe's fields, also crops
upper bodies, zooms, pastes one or several people onto person-free photos at any scale, or shows
a person-free photo alone; then colour, blur, noise and JPEG jitter.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from banet.image_io import cover_crop, load_rgb, shrink_to
from banet.targets import boundary_band
from data_tools.dataset import Dataset, Sample
from data_tools.split import seeded_cut

from .composite import Box, cover_box, crop, paste_person, person_box, random_crop, touches_bottom, upper_body_box
from .config import TrainConfig
from .holdout import background_paths, held_out_ids


@dataclass(frozen=True)
class Entry:
    dataset: Dataset
    sample: Sample
    source: int  # index of its folder in train_data

    @property
    def key(self) -> str:
        return f"{self.dataset.root.name}/{self.sample.id}"


def list_entries(folders: Sequence[str], exclude_holdout: bool = True) -> list[Entry]:
    """Every sample of the dataset folders, less the frozen held-out ids (training/holdout.json)."""
    entries = []
    for source, folder in enumerate(folders):
        dataset = Dataset.open(folder)
        skip = held_out_ids(folder) if exclude_holdout else frozenset()
        entries += [Entry(dataset, s, source) for s in dataset if s.id not in skip]
    if not entries:
        raise ValueError(f"no samples in {', '.join(folders)}")
    return entries


def split_entries(entries: list[Entry], fraction: float, seed: int) -> tuple[list[Entry], list[Entry]]:
    """(train, val): a fixed random `fraction` of the samples held out for validation curves."""
    return seeded_cut(entries, fraction, seed)


@dataclass
class ArraySet:
    """Images (N,H,W,3) uint8 and masks (N,H,W) uint8 0..255 at the training canvas size."""

    images: np.ndarray
    masks: np.ndarray
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)


def load_arrays(entries: Sequence[Entry], size: tuple[int, int], desc: str = "decode") -> ArraySet:
    """Decode the samples once, each scaled to cover size=(h, w) and centre-cropped."""
    images = np.empty((len(entries), *size, 3), np.uint8)
    masks = np.empty((len(entries), *size), np.uint8)
    for i, e in enumerate(tqdm(entries, desc=desc, unit="img", leave=False)):
        images[i] = cover_crop(e.dataset.read_image(e.sample), size, cv2.INTER_AREA)
        masks[i] = cover_crop(e.dataset.read_mask(e.sample), size, cv2.INTER_AREA)
    return ArraySet(images, masks, [e.key for e in entries])


@dataclass
class PhotoSet:
    """Whole photos with their masks, long side at most `long_side`, and each person's box."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    boxes: list[Box | None]
    sources: np.ndarray  # folder index of each photo
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)


def load_photos(entries: Sequence[Entry], long_side: int, desc: str = "decode") -> PhotoSet:
    images, masks = [], []
    for e in tqdm(entries, desc=desc, unit="img", leave=False):
        images.append(shrink_to(e.dataset.read_image(e.sample), long_side))
        masks.append(shrink_to(e.dataset.read_mask(e.sample), long_side))
    return PhotoSet(images, masks, [person_box(m) for m in masks],
                    np.array([e.source for e in entries]), [e.key for e in entries])


def load_backgrounds(folder: str | None, long_side: int) -> list[np.ndarray]:
    """The person-free photos of the training scenes (the held-out scenes are left out)."""
    if not folder:
        return []
    return [shrink_to(load_rgb(p), long_side) for p in background_paths(folder, held_out=False)]


class Framer:
    """Builds one (image, mask) pair on a canvas: the framing step before `augment`."""

    def __init__(self, photos: PhotoSet, backgrounds: list[np.ndarray], config: TrainConfig) -> None:
        self.photos, self.backgrounds, self.config = photos, backgrounds, config
        if (config.p_paste or config.p_empty) and not backgrounds:
            raise ValueError("p_paste and p_empty need person-free photos: set backgrounds to a folder of them")
        weights = np.asarray(config.source_weights, np.float64)
        if weights.size and weights.size != len(config.train_data):
            raise ValueError(f"source_weights has {weights.size} values for {len(config.train_data)} train_data folders")
        self.by_source = [np.nonzero(photos.sources == s)[0] for s in range(weights.size)]
        present = np.array([len(i) > 0 for i in self.by_source], bool)
        self.weights = weights * present / (weights * present).sum() if weights.size else None

    def pick(self, index: int, rng: np.random.Generator) -> int:
        """The photo for a key: `index` itself, or with source_weights a folder drawn by weight."""
        if self.weights is None:
            return index
        indices = self.by_source[rng.choice(len(self.weights), p=self.weights)]
        return int(indices[rng.integers(len(indices))])

    def __call__(self, index: int, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """An empty background, pasted people, an upper-body crop (of a whole person) or the photo."""
        c = self.config
        u = rng.random()
        if self.backgrounds and u < c.p_empty:
            return random_crop(self.backgrounds, size, rng, 2.0), np.zeros(size, np.uint8)
        if self.backgrounds and u < c.p_empty + c.p_paste:
            return self.pasted(index, size, rng)
        i = self.pick(index, rng)
        image, mask, box = self.photos.images[i], self.photos.masks[i], self.photos.boxes[i]
        if box is not None and not touches_bottom(mask, box) and u < c.p_empty + c.p_paste + c.p_upper:
            frame = upper_body_box(mask, box, size, rng.uniform(*c.upper), margin=rng.uniform(0.02, 0.15),
                                   shift=rng.uniform(-0.2, 0.2))
        else:
            position = tuple(rng.random(2)) if c.zoom[1] > 1 else (0.5, 0.5)  # zoom off: the paper's centre crop
            frame = cover_box(image.shape, size, rng.uniform(*c.zoom), position)
        return crop(image, frame, size), crop(mask, frame, size)

    def pasted(self, index: int, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One person, or two to max_people, pasted at random heights and places on a background."""
        c = self.config
        canvas = random_crop(self.backgrounds, size, rng, 2.0)
        target = np.zeros(size, np.uint8)
        count = int(rng.integers(2, c.max_people + 1)) if rng.random() < c.p_group else 1
        low, high = np.log(c.person_height[0]), np.log(c.person_height[1])
        for k in range(count):
            i = self.pick(index, rng) if k == 0 else self.pick(int(rng.integers(len(self.photos))), rng)
            image, mask, box = self.photos.images[i], self.photos.masks[i], self.photos.boxes[i]
            if box is None:
                continue
            height = size[0] * float(np.exp(rng.uniform(low, high)))
            cut = touches_bottom(mask, box)  # a portrait stands on the canvas's bottom edge
            bottom = size[0] if cut else rng.uniform(min(height, size[0]), size[0])
            paste_person(canvas, target, image, mask, box, height, rng.uniform(0, size[1]), bottom)
        return canvas, target


def augment(image: np.ndarray, mask: np.ndarray, config: TrainConfig,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation within ±rotation degrees, horizontal flip, lightness scaling (HLS L channel),
    then saturation / hue, blur, noise and JPEG jitter (each off at its default)."""
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
    if config.saturation != (1.0, 1.0) or config.hue:
        hls[..., 2] *= rng.uniform(*config.saturation)
        hls[..., 0] = (hls[..., 0] + rng.uniform(-config.hue, config.hue) / 2) % 180  # OpenCV hue: 0..180
    image = cv2.cvtColor(np.clip(hls, 0, 255).astype(np.uint8), cv2.COLOR_HLS2RGB)
    return degrade(image, config, rng), np.ascontiguousarray(mask)


def degrade(image: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Camera and upload defects: Gaussian blur, sensor noise, JPEG compression."""
    if rng.random() < config.p_blur:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.5))
    if rng.random() < config.p_noise:
        noise = rng.normal(0, rng.uniform(1, config.noise), image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    if rng.random() < config.p_jpeg:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        _, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return image


def to_tensors(image: np.ndarray, mask: np.ndarray, band_width: float) -> tuple[torch.Tensor, ...]:
    """(image 3xHxW in [0,1], soft mask 1xHxW in [0,1], boundary band 1xHxW 0/1)."""
    band = boundary_band(mask, band_width)
    return (torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255),
            torch.from_numpy(mask).float().div_(255)[None],
            torch.from_numpy(band).float()[None])


class AugmentedSet(torch.utils.data.Dataset):
    """Samples built with an RNG seeded by (seed, epoch, index): reproducible and resumable."""

    def __init__(self, photos: PhotoSet, backgrounds: list[np.ndarray], config: TrainConfig) -> None:
        self.framer, self.config = Framer(photos, backgrounds, config), config

    def __len__(self) -> int:
        return len(self.framer.photos)

    def __getitem__(self, key: tuple[int, int, bool]) -> tuple[torch.Tensor, ...]:
        epoch, index, landscape = key
        rng = np.random.default_rng((self.config.seed, epoch, index))
        size = self.config.canvas[::-1] if landscape else self.config.canvas
        image, mask = self.framer(index, size, rng)
        image, mask = augment(image, mask, self.config, rng)
        return to_tensors(image, mask, self.config.band_width)


class EpochKeys(torch.utils.data.Sampler):
    """Endless (epoch, index, landscape) keys in DistributedSampler's order, each epoch trimmed to
    whole batches; `landscape` is drawn per batch (seeded by epoch and batch), so a batch shares
    one canvas.

    One DataLoader (and its worker processes) then serves the whole run; `skip` keys of the
    first epoch are left out so a resumed run continues exactly where it stopped.
    """

    def __init__(self, sampler: DistributedSampler, batch_size: int, landscape: float = 0.0,
                 seed: int = 0, epoch: int = 0, skip: int = 0) -> None:
        self.sampler, self.batch_size, self.epoch, self.skip = sampler, batch_size, epoch, skip
        self.landscape, self.seed = landscape, seed

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int, bool]]:
        epoch, skip = self.epoch, self.skip
        while True:
            self.sampler.set_epoch(epoch)
            order = list(self.sampler)[:self.steps_per_epoch * self.batch_size]
            shapes = np.random.default_rng((self.seed, epoch)).random(self.steps_per_epoch) < self.landscape
            yield from ((epoch, index, bool(shapes[p // self.batch_size]))
                        for p, index in enumerate(order) if p >= skip)
            epoch, skip = epoch + 1, 0
