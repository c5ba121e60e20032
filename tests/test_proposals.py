"""The proposal cache: one computation per photo, annotation and parameters, never a stale answer."""
from __future__ import annotations

import numpy as np
import pytest

from banet import DEFAULT_MODEL, Predictor, load_model
from benchmarks.coarse import polygon
from data_tools.dataset import Dataset, DatasetError
from data_tools.proposals import ProposalCache
from data_tools.refine import RefineParams, refine_sample

from .helpers import read_pair


class Counting:
    """A predictor that counts its calls."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor, self.calls = predictor, 0

    def __call__(self, image):
        self.calls += 1
        return self.predictor(image)


@pytest.fixture()
def sloppy(pfcn_paths, tmp_path) -> Dataset:
    """One real photo with a polygon annotation that refinement changes."""
    dataset = Dataset.create(tmp_path / "ds")
    _, truth = read_pair(pfcn_paths[1])
    dataset.add("photo", pfcn_paths[1].read_bytes(), ".jpg", polygon(truth, np.random.default_rng(0)))
    dataset.save()
    return dataset


def test_a_proposal_is_computed_once_and_read_back_identical(sloppy, tmp_path):
    predictor, cache, params = Counting(Predictor(load_model())), ProposalCache(tmp_path / "cache"), RefineParams()
    sample = sloppy["photo"]

    def compute(chosen: RefineParams = params):
        return lambda: refine_sample(sloppy, sample, predictor, chosen)

    first = cache.refinement(sloppy, sample, params, DEFAULT_MODEL, compute())
    again = cache.refinement(sloppy, sample, params, DEFAULT_MODEL, compute())
    assert predictor.calls == 1 and first.changed
    for field in ("alpha", "mask", "band"):
        assert np.array_equal(getattr(first, field), getattr(again, field))
    assert (again.band_px, again.confidence, again.changed, again.params) == (
        first.band_px, first.confidence, first.changed, first.params)
    narrow = RefineParams(band_px=20)
    cache.refinement(sloppy, sample, narrow, DEFAULT_MODEL, compute(narrow))  # other parameters
    cache.refinement(sloppy, sample, params, "other-weights", compute())  # other weights
    assert predictor.calls == 3


def test_a_new_annotation_or_a_damaged_entry_is_recomputed(sloppy, tmp_path):
    predictor, cache, params = Counting(Predictor(load_model())), ProposalCache(tmp_path / "cache"), RefineParams()
    sample = sloppy["photo"]

    def compute():
        return refine_sample(sloppy, sample, predictor, params)

    first = cache.refinement(sloppy, sample, params, DEFAULT_MODEL, compute)
    sloppy.set_mask("photo", first.mask, "accept", kind="refined")
    after = cache.refinement(sloppy, sample, params, DEFAULT_MODEL, compute)
    assert predictor.calls == 2 and not after.changed  # the accepted proposal already follows the edges
    for entry in (tmp_path / "cache").glob("*.npz"):
        entry.write_bytes(entry.read_bytes()[:100])
    cache.refinement(sloppy, sample, params, DEFAULT_MODEL, compute)
    assert predictor.calls == 3


def test_a_missing_photo_is_a_dataset_error_naming_it(sloppy, tmp_path):
    sloppy.image_path(sloppy["photo"]).unlink()
    with pytest.raises(DatasetError, match="photo: cannot read"):
        ProposalCache(tmp_path / "cache").refinement(sloppy, sloppy["photo"], RefineParams(), DEFAULT_MODEL, lambda: None)
