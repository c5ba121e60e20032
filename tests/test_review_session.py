"""The review session layer, without Gradio: rank, filter, step, view, decide on real photos."""
from __future__ import annotations

import numpy as np
import pytest

from banet import Predictor
from data_tools import review
from data_tools.dataset import Dataset
from data_tools.importers import import_into, read_folders
from data_tools.proposals import ProposalCache
from workbench.review_session import ReviewError, ReviewSession

from .helpers import copy_pairs


@pytest.fixture()
def opened(pfcn_paths, fitted_model, tmp_path):
    """A session over three real samples and a fourth whose photo is cut short."""
    photos = copy_pairs(pfcn_paths[:4], tmp_path / "src")
    broken = sorted((photos / "images").iterdir())[3]
    dataset = Dataset.create(tmp_path / "ds")
    import_into(dataset, read_folders(photos / "images", photos / "masks"))
    dataset.image_path(dataset[broken.stem]).write_bytes(broken.read_bytes()[:400])
    predictor, cache = Predictor(fitted_model), ProposalCache(tmp_path / "proposals")
    session, unreadable = ReviewSession.open(dataset, "fitted", predictor, cache, "portraits", band_px=50)
    return session, unreadable, predictor, cache, broken.stem


def test_open_ranks_the_readable_samples_and_names_the_rest(opened):
    session, unreadable, predictor, cache, broken = opened
    assert len(session.ranked) == 3 and broken not in session.ranked
    assert len(unreadable) == 1 and broken in unreadable[0]
    view = session.view(predictor, cache, 50)
    priorities = [cache.refinement(session.dataset(), session.dataset()[i], view.proposal.params, "fitted",
                                   lambda: pytest.fail("ranking computed every proposal once")).priority
                  for i in session.ranked]
    assert priorities == sorted(priorities, reverse=True)  # likely improvements first
    assert view.sample_id == session.ranked[0] and view.proposal.band_px == 50
    assert view.header().startswith(f"**{view.sample_id}** (1 of 3 in this view)") and "0 of 4 reviewed" in view.header()


def test_decisions_are_saved_and_the_queue_moves_on(opened):
    session, _, predictor, cache, _ = opened
    first = session.view(predictor, cache, 50)
    session.decide("accept", 50)
    second = session.view(predictor, cache, 50)
    assert second.sample_id == session.ranked[1] and second.reviewed == 1
    session.decide("reject", 50)
    third = session.view(predictor, cache, 50)
    edited = np.zeros_like(third.proposal.mask)
    edited[100:300, 100:300] = 255
    session.decide("edit", 50, edited)
    dataset = session.dataset()
    assert [review.status(dataset[i]) for i in session.ranked] == ["accepted", "rejected", "edited"]
    assert np.array_equal(dataset.read_mask(dataset[first.sample_id]), first.proposal.mask)
    assert np.array_equal(dataset.read_mask(dataset[third.sample_id]), edited)
    assert dataset[third.sample_id].history[-1].details["method"] == "brush"
    session.filter("unreviewed")
    assert session.order == [] and session.view(predictor, cache, 50) is None
    session.filter("all")
    assert "3 of 4 reviewed" in session.view(predictor, cache, 50).header()


def test_a_decision_on_a_proposal_never_shown_is_refused(opened):
    session, _, predictor, cache, _ = opened
    with pytest.raises(ReviewError, match="look at a sample first"):
        session.decide("accept", 50)
    session.view(predictor, cache, 50)
    with pytest.raises(ReviewError, match="band width changed"):
        session.decide("accept", 80)
    session.step(1)  # moved on without looking
    with pytest.raises(ReviewError, match="look at a sample first"):
        session.decide("accept", 50)
    assert review.progress(session.dataset()) == (0, 4)


def test_steps_wrap_around_the_filtered_order(opened):
    session, _, predictor, cache, _ = opened
    session.step(-1)
    assert session.view(predictor, cache, 50).sample_id == session.ranked[-1]
    session.step(1)
    assert session.position == 0
    with pytest.raises(ReviewError, match="unknown filter"):
        session.filter("maybe")
