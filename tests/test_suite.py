"""The evaluation suite: frozen, built from held-out photos only, and scored per domain."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from banet import DEFAULT_MODEL
from banet.masks import person
from data_tools.dataset import Dataset
from training import evaluate
from training.composite import person_box
from training.config import DATA_ROOT
from training.suite import DOMAINS, LANDSCAPE, Sources, build_suite


def masks(folder) -> list[np.ndarray]:
    dataset = Dataset.open(folder)
    return [dataset.read_mask(s) for s in dataset]


def test_every_domain_is_built_with_people_where_it_says(suite):
    assert tuple(suite) == DOMAINS
    sizes = {name: len(Dataset.open(folder)) for name, folder in suite.items()}
    assert sizes == {"pfcn-test": 264, "ccp-full": 150, "ccp-upper": 150, "small-person": 150, "group": 100,
                     "landscape": 150, "no-person": 100, "crowd": 100, "pfcn-small-person": 150, "pfcn-group": 100,
                     "pfcn-landscape": 150}
    assert not any(m.any() for m in masks(suite["no-person"]))
    composites = {name: masks(suite[name]) for name in ("small-person", "group", "landscape", "crowd",
                                                        "pfcn-small-person", "pfcn-group", "pfcn-landscape")}
    for name, pictures in composites.items():
        for mask in pictures:
            assert mask.shape == LANDSCAPE and (mask > 127).any(), name
    for name in ("small-person", "pfcn-small-person"):
        boxes = [person_box(m) for m in composites[name]]
        heights = [(b[2] - b[0]) / LANDSCAPE[0] for b in boxes]
        assert 0.14 < min(heights) and max(heights) < 0.36, name
        centres = [(b[1] + b[3]) / 2 / LANDSCAPE[1] for b in boxes]
        assert all(abs(c - 0.5) > 0.15 for c in centres), name  # off centre
    people = [cv2.connectedComponents(person(m).astype(np.uint8))[0] - 1 for m in composites["crowd"]]
    assert min(people) >= 2 and np.mean(people) > 3  # four to eight, the near ones in front of the far
    # PFCN portraits are cut by their photo's bottom edge (all but 3 of 264), so their busts stand on the frame's
    assert np.mean([(m[-3:] > 127).any() for m in composites["pfcn-landscape"]]) > 0.95
    assert np.mean([(m[-1] > 127).any() for m in masks(suite["ccp-upper"])]) > 0.95  # cut at the waist


def test_a_second_build_gives_the_same_pixels(suite, tmp_path):
    again = build_suite(tmp_path)
    for name in ("ccp-upper", "group", "no-person"):
        first, second = Dataset.open(suite[name]), Dataset.open(again[name])
        for sample in list(first)[:10]:
            assert (first.read_mask(sample) == second.read_mask(second[sample.id])).all()
            assert first.image_path(sample).read_bytes() == second.image_path(second[sample.id]).read_bytes()


@pytest.mark.skipif(not (DATA_ROOT / "ccp").is_dir(), reason="needs ../shared/data")
def test_the_photo_pools_read_only_the_photos_drawn(monkeypatch):
    """The training pools (1,290 PFCN photos, CCP's other people) are held as file lists: benchmarks/upsampling.py
    draws 100 of each without decoding the rest into memory."""
    reads = []
    read_image = Dataset.read_image
    monkeypatch.setattr(Dataset, "read_image", lambda self, sample: reads.append(sample.id) or read_image(self, sample))
    held_out, training = Sources(DATA_ROOT), Sources(DATA_ROOT, held_out=False)
    assert (len(held_out.pfcn), len(training.pfcn)) == (264, 1290)
    assert len(held_out.ccp) == 150 and len(training.ccp) == 703 - 150
    assert not {s.id for s in held_out.ccp.samples} & {s.id for s in training.ccp.samples}
    assert reads == []
    drawn = training.cast("pfcn", np.random.default_rng(0), 5)
    assert len(drawn) == len(reads) == 5 and drawn[0][0].shape[:2] == drawn[0][1].shape


def test_evaluate_suite_prints_one_row_per_domain(suite, tmp_path, capsys):
    root = suite["ccp-full"].parent
    evaluate.main(["--weights", DEFAULT_MODEL, "--suite", str(root), "--limit", "3", "--out", str(tmp_path / "out")])
    table = capsys.readouterr().out
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == list(DOMAINS)
    summary = {s["domain"]: s for s in json.loads((tmp_path / "out" / "summary.json").read_text())}
    assert all(s["images"] == 3 and 0 <= s["false_positive"] <= 1 for s in summary.values())
    assert np.isnan(summary["no-person"]["gradient_alignment"])  # no edge to align with: not scored as perfect
    assert 0 < summary["pfcn-test"]["gradient_alignment"] < 1
