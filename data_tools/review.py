"""Review decisions on refinement proposals, stored in the dataset's history (so they survive a
browser reload and a server restart): accept (the proposal becomes the mask), reject (the mask
stays), edit (a hand-corrected mask). Each decision is written atomically as it is made."""
from __future__ import annotations

import numpy as np

from .dataset import Dataset, Revision, Sample, now, sha256_bytes

DECISIONS = ("accept", "reject", "edit")
STATUS_OF = {"accept": "accepted", "reject": "rejected", "edit": "edited"}
STATUSES = ("unreviewed", *STATUS_OF.values())


def status(sample: Sample) -> str:
    """unreviewed, accepted, rejected or edited: the sample's last review decision."""
    for revision in reversed(sample.history):
        if revision.action in DECISIONS:
            return STATUS_OF[revision.action]
    return "unreviewed"


def decide(dataset: Dataset, sample_id: str, decision: str, mask: np.ndarray | None,
           details: dict) -> Revision:
    """Record one decision and save the manifest. `mask` is the proposal (accept) or the edited
    mask (edit); reject keeps the current mask and only records the decision."""
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}")
    sample = dataset[sample_id]
    if decision == "reject":
        current = sha256_bytes(dataset.mask_path(sample).read_bytes())
        revision = Revision("reject", current, now(), "", details)
        sample.history.append(revision)
    else:
        if mask is None:
            raise ValueError(f"{decision} needs a mask")
        revision = dataset.set_mask(sample_id, mask, decision, kind="refined", details=details)
    dataset.save()
    return revision


def progress(dataset: Dataset) -> tuple[int, int]:
    """(reviewed, total)."""
    return sum(status(s) != "unreviewed" for s in dataset), len(dataset)
