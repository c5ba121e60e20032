"""The people recipe: held-out photos stay out, and the framing step builds the pictures it claims."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from torch.utils.data import DistributedSampler

from training.composite import paste_person, person_box
from training.config import PRESETS, TrainConfig
from training.data import AugmentedSet, EpochKeys, Framer, list_entries, load_backgrounds, load_photos
from training.holdout import background_paths, background_scene, held_out_ids

from .conftest import DATA

CCP, BACKGROUNDS = DATA / "ccp", DATA / "backgrounds"


@pytest.fixture(scope="module")
def people_data():
    """60 CCP training photos and the training backgrounds, at a 256 long side."""
    if not (CCP.is_dir() and BACKGROUNDS.is_dir()):
        pytest.skip(f"CCP and backgrounds not found under {DATA}")
    entries = list_entries([str(CCP)])[:60]
    return load_photos(entries, 256), load_backgrounds(str(BACKGROUNDS), 256)


def components(mask: np.ndarray) -> int:
    return cv2.connectedComponents((mask > 127).astype(np.uint8))[0] - 1


def test_held_out_photos_and_scenes_are_never_trained_on():
    if not CCP.is_dir():
        pytest.skip(f"CCP not found at {CCP}")
    held = held_out_ids(CCP)
    assert len(held) == 150 and held_out_ids(DATA / "ccp320") == held and not held_out_ids(DATA / "pfcn")
    trained = {e.sample.id for e in list_entries([str(CCP)])}
    assert len(trained) == 703 - 150 and not trained & held
    train_scenes = {background_scene(p) for p in background_paths(BACKGROUNDS, held_out=False)}
    test_scenes = {background_scene(p) for p in background_paths(BACKGROUNDS, held_out=True)}
    assert len(test_scenes) == 24 and not train_scenes & test_scenes  # cubemap faces of one scene stay together


def test_paste_puts_the_person_where_the_mask_says(people_data):
    photos, _ = people_data
    image, mask, box = photos.images[0], photos.masks[0], photos.boxes[0]
    canvas, target = np.zeros((300, 400, 3), np.uint8), np.zeros((300, 400), np.uint8)
    paste_person(canvas, target, image, mask, box, height=150, centre_x=100, bottom_y=280)
    top, left, bottom, right = person_box(target)
    assert abs((bottom - top) - 150) <= 3 and abs(bottom - 280) <= 2 and abs((left + right) / 2 - 100) < 30
    person = target > 200
    assert canvas[person].mean() > 20 and canvas[target == 0].max() == 0  # pixels only where the person is
    scale = 150 / (box[2] - box[0])
    assert np.count_nonzero(person) == pytest.approx(np.count_nonzero(mask > 127) * scale ** 2, rel=0.1)


def test_framer_builds_empty_pasted_group_and_upper_body_pictures(people_data):
    photos, backgrounds = people_data
    base = TrainConfig(person_height=(0.3, 0.6))
    size = (256, 192)

    def frame(config: TrainConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return Framer(photos, backgrounds, config)(seed % len(photos), size, np.random.default_rng(seed))

    for seed in range(5):
        image, mask = frame(replace(base, p_empty=1.0), seed)
        assert image.shape == (*size, 3) and not mask.any() and image.std() > 5
    heights = []
    for seed in range(10):
        _, mask = frame(replace(base, p_paste=1.0), seed)
        top, _, bottom, _ = person_box(mask)
        heights.append((bottom - top) / size[0])
    assert 0.25 < min(heights) and max(heights) < 0.65  # person_height, a few pixels of rounding aside
    groups = [components(frame(replace(base, p_paste=1.0, p_group=1.0, max_people=3), s)[1]) for s in range(10)]
    assert sum(n >= 2 for n in groups) >= 7  # several people (some overlap into one blob)
    for seed in range(5):  # upper bodies: room above the head, the body cut by the bottom edge
        _, mask = frame(replace(base, p_upper=1.0, upper=(0.4, 0.4)), seed)
        assert (mask[-1] > 127).any() and not (mask[0] > 127).any() and (mask > 127).mean() > 0.2


def test_batches_share_one_canvas_and_landscape_comes_at_its_rate(people_data):
    photos, backgrounds = people_data
    config = replace(PRESETS["cpu-people"], input_size=64, landscape=0.4, train_data=(str(CCP),), source_weights=())
    dataset = AugmentedSet(photos, backgrounds, config)
    sampler = DistributedSampler(range(len(dataset)), 1, 0, shuffle=True, seed=0, drop_last=True)
    keys = EpochKeys(sampler, 4, config.landscape, config.seed)
    batches = []
    for i, key in zip(range(400), keys):
        if i % 4 == 0:
            batches.append([])
        batches[-1].append(key)
    assert all(len({k[2] for k in batch}) == 1 for batch in batches)
    rate = np.mean([batch[0][2] for batch in batches])
    assert 0.25 < rate < 0.55
    image, mask, band = dataset[batches[0][0]]
    landscape = batches[0][0][2]
    assert image.shape[1:] == ((48, 64) if landscape else (64, 48)) and mask.shape == band.shape

