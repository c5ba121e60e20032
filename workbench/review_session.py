"""One visitor's review of a dataset, without Gradio: rank the samples once, filter, step, decide.

Example:
    >>> session, unreadable = ReviewSession.open(dataset, "banet-64", predictor, cache)
    >>> view = session.view(predictor, cache, band_px=0)
    >>> session.decide("accept", band_px=0)  # on the proposal just viewed; or "reject", or "edit" with a mask
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from banet import ImageLoadError, Predictor
from data_tools import refine, review
from data_tools.dataset import Dataset, DatasetError, Sample
from data_tools.proposals import ProposalCache

FILTERS = ("all", *review.STATUSES)


class ReviewError(ValueError):
    """A review step cannot be taken; the message says why, in the user's words."""


@dataclass
class ReviewView:
    """One sample as the reviewer sees it, with the proposal a decision on it applies."""

    sample_id: str
    position: int  # 0-based, within the filtered order
    count: int  # samples in the filtered order
    status: str
    reviewed: int  # samples of the whole dataset with a decision
    total: int
    image: np.ndarray
    annotation: np.ndarray  # uint8 (H,W)
    confidence: np.ndarray  # the model's, float32 (H,W)
    proposal: refine.Refinement

    @property
    def verdict(self) -> str:
        """How far to trust the proposal, in words, with its confidence (the gain in edge alignment)."""
        proposal = self.proposal
        if not proposal.changed:
            return ("no change proposed: the annotation already follows the photo's edges "
                    f"(gain {proposal.confidence:+.3f})")
        flag = "⚠ doubtful, check it closely" if proposal.doubtful else "likely improvement"
        return f"{flag} (confidence: edge alignment {proposal.confidence:+.3f})"

    def header(self) -> str:
        done = "✓ all reviewed" if self.reviewed == self.total else f"{self.reviewed} of {self.total} reviewed"
        return (f"**{self.sample_id}** ({self.position + 1} of {self.count} in this view) · status: {self.status} · "
                f"{self.verdict} · band {self.proposal.band_px} px · {done}")


@dataclass
class ReviewSession:
    """The queue: every readable sample ranked by its proposal (likely improvements first), the
    filtered order, the position in it, and the weights the proposals came from."""

    root: Path
    model: str
    name: str  # the dataset's, for downloads and fine-tuned weights
    ranked: list[str]
    order: list[str] = field(default_factory=list)
    position: int = 0
    status_filter: str = "all"
    shown: tuple[str, int, refine.Refinement] | None = None  # (sample, band width asked for, proposal) last viewed

    @classmethod
    def open(cls, dataset: Dataset, model: str, predictor: Predictor, cache: ProposalCache, name: str = "dataset",
             band_px: int = 0, progress: Callable[[Iterable], Iterable] = iter) -> tuple[ReviewSession, list[str]]:
        """Rank every sample (proposals computed once, kept in `cache`); returns the session and the
        samples left out as unreadable, each with its reason. ReviewError when none is readable."""
        params, scores, unreadable = refine.RefineParams(band_px=band_px), {}, []
        for sample in progress(list(dataset)):
            try:
                proposal = cache.refinement(dataset, sample, params, model,
                                            lambda s=sample: refine.refine_sample(dataset, s, predictor, params))
                scores[sample.id] = proposal.priority
            except (ImageLoadError, DatasetError, ValueError) as e:
                unreadable.append(str(e))
        if not scores:
            raise ReviewError("No sample of this dataset could be read: " + "; ".join(unreadable[:3]))
        session = cls(Path(dataset.root), model, name, sorted(scores, key=scores.get, reverse=True))
        session.filter("all")
        return session, unreadable

    def dataset(self) -> Dataset:
        return Dataset.open(self.root)  # from disk each time: decisions of another tab or a restart included

    def filter(self, status_filter: str) -> None:
        """Show only samples with this review status (or "all"), from the top of the ranking."""
        if status_filter not in FILTERS:
            raise ReviewError(f"unknown filter {status_filter!r}; choose from {', '.join(FILTERS)}")
        dataset = self.dataset()
        self.status_filter, self.position = status_filter, 0
        self.order = [i for i in self.ranked if i in dataset.samples
                      and (status_filter == "all" or review.status(dataset[i]) == status_filter)]

    def step(self, delta: int) -> None:
        if self.order:
            self.position = (self.position + delta) % len(self.order)

    def view(self, predictor: Predictor, cache: ProposalCache, band_px: int = 0) -> ReviewView | None:
        """The current sample with its proposal at this band width; None when the filter matches nothing."""
        if not self.order:
            return None
        dataset = self.dataset()
        sample = dataset[self.order[self.position]]
        image, annotation = dataset.read_image(sample), dataset.read_mask(sample)
        confidence = predictor(image).confidence
        params = refine.RefineParams(band_px=int(band_px))
        proposal = cache.refinement(dataset, sample, params, self.model,
                                    lambda: refine.refine(image, annotation, confidence, params))
        self.shown = (sample.id, int(band_px), proposal)
        done, total = review.progress(dataset)
        return ReviewView(sample.id, self.position, len(self.order), review.status(sample), done, total,
                          image, annotation, confidence, proposal)

    def decide(self, decision: str, band_px: int, edited: np.ndarray | None = None) -> None:
        """Record a decision on the sample last viewed (accept its proposal, reject it, or save
        `edited`) and move to the next sample. Refused when the band width changed since it was
        viewed: the decision would apply a proposal the reviewer never saw."""
        if not self.order or not self.shown or self.shown[0] != self.order[self.position]:
            raise ReviewError("Open a dataset and look at a sample first.")
        sample_id, shown_px, proposal = self.shown
        if int(band_px) != shown_px:
            raise ReviewError("The band width changed since this proposal was drawn: look at the new one first.")
        dataset = self.dataset()
        sample: Sample = dataset[sample_id]
        details = refine.provenance(dataset, sample, proposal, self.model)
        if decision == "edit":
            if edited is None:
                raise ReviewError("An edit needs the corrected mask.")
            details["method"] = "brush"
        mask = {"accept": proposal.mask, "edit": edited}.get(decision)
        review.decide(dataset, sample.id, decision, mask, details)
        self.step(1)
