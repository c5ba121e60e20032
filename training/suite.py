"""The evaluation suite: people in many framings, built only from held-out photos.

    python -m training.evaluate --suite                  # BANet weights, one row per domain
    python -m benchmarks.compare --suite                 # BANet and MediaPipe side by side

Domains (all frozen: the photos come from training/holdout.json and every random choice is
seeded by the domain's name, so every build gives the same pixels):

| domain | what |
|---|---|
| pfcn-test | the 264 PFCN test portraits, as they are |
| ccp-full | the 150 held-out CCP photos: full-body street photos |
| ccp-upper | the same people cropped to head and upper body (top half of the person), 3:4 |
| small-person | one held-out person, 15-35% of the frame height, off centre, on a held-out background, 4:3 landscape |
| group | two or three held-out people side by side, 50-90% of the frame height, 4:3 landscape |
| landscape | one held-out person, 70-98% of the frame height, anywhere across a 4:3 landscape frame |
| no-person | crops of held-out background scenes, portrait and landscape: the mask must stay empty |
| crowd | four to eight held-out people at street depths: the farther, the smaller (15-60% tall) and higher |
| pfcn-small-person, -group, -landscape | as small-person, group, landscape, with PFCN test people (150, 100, 150) |

The CCP people of the held-out split were seen by the first stage of `banet-64`'s lineage, run
before the split existed; no training stage of any model saw a PFCN test photo, so the `pfcn-`
composites are the framings' strictly unseen rows.

The built domains are written as images/ + masks/ folders under the suite folder (default
runs/suite), once; a folder is rebuilt when SUITE_VERSION changes.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property, partial
from pathlib import Path

import cv2
import numpy as np

from banet.image_io import load_rgb
from data_tools.atomic import write_text
from data_tools.dataset import Dataset

from .composite import crop, paste_person, person_box, random_crop, touches_bottom, upper_body_box
from .config import DATA_ROOT
from .holdout import background_paths, held_out_ids

SUITE_VERSION = "1"
DEFAULT_SUITE_DIR = Path("runs/suite")
LANDSCAPE = (600, 800)  # (h, w) of the composite frames
UPPER = (400, 300)  # (h, w) of the upper-body crops
NO_PERSON = 100
CROWDS = 100
PFCN_COMPOSITES = 150  # of the 264 PFCN test portraits, as many as the CCP composites
PFCN_TEST = Path("pfcn") / "test"  # under the data root: the pfcn-test domain, and the pfcn- composites' people
PFCN_TRAIN = Path("pfcn") / "train"

Pair = tuple[np.ndarray, np.ndarray]  # (RGB image, mask 0..255)


class Pairs(Sequence[Pair]):
    """A dataset's samples as (photo, mask) pairs, each read from disk when indexed: a pool of
    1,290 PFCN training photos costs nothing until the few drawn from it are read."""

    def __init__(self, dataset: Dataset, keep: Callable[[str], bool] = lambda sample_id: True) -> None:
        self.dataset = dataset
        self.samples = [s for s in sorted(dataset, key=lambda s: s.id) if keep(s.id)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Pair:
        sample = self.samples[index]
        return self.dataset.read_image(sample), self.dataset.read_mask(sample)


class Photos(Sequence[np.ndarray]):
    """Photo files read when indexed."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return load_rgb(self.paths[index])


class Sources:
    """The held-out photos the built domains draw on, each read when drawn;
    `held_out=False`: the training photos instead (CCP's other people, PFCN train, the other
    scenes), for choices that must not look at the suite (benchmarks/upsampling.py)."""

    def __init__(self, data_root: Path, held_out: bool = True) -> None:
        self.data_root = data_root
        self.held_out = held_out

    @cached_property
    def ccp(self) -> Pairs:
        """The held-out CCP photos (or the others): one person each, full body."""
        keep = held_out_ids(self.data_root / "ccp")
        return Pairs(Dataset.open(self.data_root / "ccp"), lambda sample_id: (sample_id in keep) == self.held_out)

    @cached_property
    def pfcn(self) -> Pairs:
        """The PFCN test portraits (or the training ones): head and shoulders, cut by the photo's bottom edge."""
        return Pairs(Dataset.open(self.data_root / (PFCN_TEST if self.held_out else PFCN_TRAIN)))

    @cached_property
    def backgrounds(self) -> Photos:
        return Photos(background_paths(self.data_root / "backgrounds", held_out=self.held_out))

    def background(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        return random_crop(self.backgrounds, size, rng, 1.6)

    def cast(self, people: str, rng: np.random.Generator, count: int | None) -> Sequence[Pair]:
        """The people of source `people` ("ccp" or "pfcn"): all in order, or `count` drawn at random."""
        pairs = getattr(self, people)
        if count is None:
            return pairs
        return [pairs[i] for i in sorted(rng.choice(len(pairs), count, replace=False))]


def paste(canvas: np.ndarray, target: np.ndarray, pair: Pair, height: float, centre_x: float,
          bottom_y: float) -> None:
    """Paste the person of `pair`; one cut by its photo's bottom edge stands on the canvas's."""
    image, mask = pair
    box = person_box(mask)
    bottom = canvas.shape[0] if touches_bottom(mask, box) else bottom_y
    paste_person(canvas, target, image, mask, box, height, centre_x, bottom)


def ccp_full(src: Sources, rng: np.random.Generator) -> Iterator[Pair]:
    yield from src.ccp


def ccp_upper(src: Sources, rng: np.random.Generator) -> Iterator[Pair]:
    for image, mask in src.ccp:
        box = upper_body_box(mask, person_box(mask), UPPER, 0.5)
        yield crop(image, box, UPPER), crop(mask, box, UPPER)


def small_person(src: Sources, rng: np.random.Generator, people: str = "ccp", count: int | None = None
                 ) -> Iterator[Pair]:
    h, w = LANDSCAPE
    for pair in src.cast(people, rng, count):
        canvas, target = src.background(rng, LANDSCAPE), np.zeros(LANDSCAPE, np.uint8)
        side = rng.uniform(0.08, 0.3)
        x = w * (side if rng.random() < 0.5 else 1 - side)
        paste(canvas, target, pair, h * rng.uniform(0.15, 0.35), x, h * rng.uniform(0.6, 0.95))
        yield canvas, target


def group(src: Sources, rng: np.random.Generator, people: str = "ccp") -> Iterator[Pair]:
    h, w = LANDSCAPE
    pairs = src.cast(people, rng, None)
    for _ in range(100):
        canvas, target = src.background(rng, LANDSCAPE), np.zeros(LANDSCAPE, np.uint8)
        count = int(rng.integers(2, 4))
        for slot, index in enumerate(rng.choice(len(pairs), count, replace=False)):
            x = w * (slot + 0.5 + rng.uniform(-0.25, 0.25)) / count
            paste(canvas, target, pairs[index], h * rng.uniform(0.5, 0.9), x, h * rng.uniform(0.85, 1.0))
        yield canvas, target


def landscape(src: Sources, rng: np.random.Generator, people: str = "ccp", count: int | None = None
              ) -> Iterator[Pair]:
    h, w = LANDSCAPE
    for pair in src.cast(people, rng, count):
        canvas, target = src.background(rng, LANDSCAPE), np.zeros(LANDSCAPE, np.uint8)
        height = h * rng.uniform(0.7, 0.98)
        paste(canvas, target, pair, height, w * rng.uniform(0.2, 0.8), rng.uniform(height, h))
        yield canvas, target


def crowd(src: Sources, rng: np.random.Generator) -> Iterator[Pair]:
    """People at random depths, pasted far to near so that the near ones stand in front."""
    h, w = LANDSCAPE
    for _ in range(CROWDS):
        canvas, target = src.background(rng, LANDSCAPE), np.zeros(LANDSCAPE, np.uint8)
        count = int(rng.integers(4, 9))
        people = rng.choice(len(src.ccp), count, replace=False)
        for near, index in sorted(zip(rng.random(count), people)):
            paste(canvas, target, src.ccp[index], h * (0.15 + 0.45 * near), w * rng.uniform(0.05, 0.95),
                  h * (0.55 + 0.43 * near))
        yield canvas, target


def no_person(src: Sources, rng: np.random.Generator) -> Iterator[Pair]:
    for index in range(NO_PERSON):
        size = LANDSCAPE if index % 2 else LANDSCAPE[::-1]
        yield src.background(rng, size), np.zeros(size, np.uint8)


BUILDERS: dict[str, Callable[[Sources, np.random.Generator], Iterator[Pair]]] = {
    "ccp-full": ccp_full, "ccp-upper": ccp_upper, "small-person": small_person, "group": group,
    "landscape": landscape, "no-person": no_person, "crowd": crowd,
    "pfcn-small-person": partial(small_person, people="pfcn", count=PFCN_COMPOSITES),
    "pfcn-group": partial(group, people="pfcn"),
    "pfcn-landscape": partial(landscape, people="pfcn", count=PFCN_COMPOSITES),
}
DOMAINS = ("pfcn-test", *BUILDERS)


def _write_domain(folder: Path, pairs: Iterator[Pair]) -> None:
    """Write the pairs as images/ + masks/ into a temporary folder, then rename it to `folder`."""
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "masks").mkdir()
    for i, (image, mask) in enumerate(pairs):
        cv2.imwrite(str(tmp / "images" / f"{i:04d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(str(tmp / "masks" / f"{i:04d}.png"), mask)
    write_text(tmp / "VERSION", SUITE_VERSION)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def build_suite(root: Path = DEFAULT_SUITE_DIR, data_root: Path = DATA_ROOT) -> dict[str, Path]:
    """Each domain's dataset folder, building (once) those not yet at SUITE_VERSION under `root`."""
    folders = {"pfcn-test": data_root / PFCN_TEST}
    sources = None
    for name, build in BUILDERS.items():
        folder = root / name
        version = folder / "VERSION"
        if not (version.is_file() and version.read_text() == SUITE_VERSION):
            sources = sources or Sources(data_root)
            root.mkdir(parents=True, exist_ok=True)
            _write_domain(folder, build(sources, np.random.default_rng(list(name.encode()))))
        folders[name] = folder
    return folders

