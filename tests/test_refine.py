"""Model-guided refinement of coarse masks, with the shipped weights on real photos."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from banet import DEFAULT_MODEL, Predictor, load_model
from banet.metrics import boundary_f_score, foreground_iou
from benchmarks.coarse import blocky, polygon, soft
from benchmarks.refine import WORSE
from data_tools import refine
from data_tools.dataset import Dataset, sha256_bytes
from data_tools.matting import solve_alpha
from training.config import DATA_ROOT

from .helpers import read_pair


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(load_model(), device="cpu")


def with_confidence(paths, predictor: Predictor) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(photo, true mask, model confidence) for each real test portrait."""
    pairs = [read_pair(path) for path in paths]
    return [(image, truth, predictor(image).confidence) for image, truth in pairs]


@pytest.fixture(scope="module")
def photos(pfcn_paths, predictor) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return with_confidence(pfcn_paths[:5], predictor)


def test_polygon_annotations_get_better_and_none_worse(photos):
    rng = np.random.default_rng(0)
    gains = []
    for image, truth, confidence in photos:
        coarse = polygon(truth, rng)
        result = refine.refine(image, coarse, confidence)
        assert (result.mask[~result.band] == coarse[~result.band]).all()  # nothing moves outside the band
        assert result.alpha.dtype == np.float32 and 0 <= result.alpha.min() and result.alpha.max() <= 1
        assert ((result.alpha > 0.5) == (result.mask > 127)).all()  # the mask is the matte at 0.5
        gains.append(foreground_iou(result.mask, truth) - foreground_iou(coarse, truth))
    assert min(gains) > -0.005 and np.mean(gains) > 0.01, gains


def rule_gains(paths, predictor: Predictor, off: refine.RefineParams) -> tuple[list, list]:
    """Per photo: IoU and boundary F of a polygon's proposal with the default parameters minus with `off`."""
    rng = np.random.default_rng(0)
    iou_gains, f_gains = [], []
    for image, truth, confidence in with_confidence(paths, predictor):
        coarse = polygon(truth, rng)
        with_rule, without = (refine.refine(image, coarse, confidence, params=p).mask for p in (refine.RefineParams(), off))
        iou_gains.append(foreground_iou(with_rule, truth) - foreground_iou(without, truth))
        f_gains.append(boundary_f_score(with_rule, truth) - boundary_f_score(without, truth))
    return iou_gains, f_gains


def test_a_rough_annotation_asks_less_of_fixes_as_deep_as_its_own_errors(predictor):
    """A polygon's chords are its own errors: with the rough rule off (rough_depth 0) fewer of
    them are fixed. Checked where it was chosen, on PFCN training photos: on the 160 development
    polygons, with the previous release's rules, it gained +0.04 IoU and +0.8 boundary F (98.17 /
    65.32 against 98.13 / 64.53) with the same photo made worse (00219). On the first 24, which
    this test runs (these rules, the mean-of-six guide), it is level on balance (mean -0.006 IoU points and
    +0.07 boundary F points; one photo 0.39 IoU points below the rule off) and fixes chords
    (+1.5 to +1.9 boundary F points on three), so here it asserts that: a fix, and no loss on
    balance."""
    folder = DATA_ROOT / "pfcn" / "train" / "images"
    if not folder.is_dir():
        pytest.skip(f"real photos not found at {folder}")
    paths = sorted(folder.glob("*.jpg"))[:24]
    iou_gains, f_gains = rule_gains(paths, predictor, replace(refine.RefineParams(), rough_depth=0.0))
    assert np.mean(iou_gains) > -0.001 and np.mean(f_gains) > -0.001 and max(f_gains) > 0.01, (iou_gains, f_gains)


def test_a_quick_polygons_proposal_needs_no_edge_gain_threshold(predictor):
    """A quick polygon's chords follow no edge of the photo, so a proposal that follows them better
    at all is kept (polygon_min_gain 0), where other annotations need a gain of 0.15. Chosen on
    PFCN training photos: on the 160 development polygons (band reach 4), 98.07 / 62.74 -> 98.18 /
    65.32 (IoU / boundary F) with no more made worse; here, on the first 24 (these rules, the
    mean-of-six guide), 4 move, by +0.25 to +2.9 IoU and +10.6 to +27.6 boundary F, and none loses."""
    folder = DATA_ROOT / "pfcn" / "train" / "images"
    if not folder.is_dir():
        pytest.skip(f"real photos not found at {folder}")
    paths = sorted(folder.glob("*.jpg"))[:24]
    iou_gains, f_gains = rule_gains(paths, predictor, replace(refine.RefineParams(), polygon_min_gain=0.15))
    assert min(iou_gains) > -WORSE and np.mean(iou_gains) > 0 and np.mean(f_gains) > 0.005, (iou_gains, f_gains)


def test_straight_share_tells_quick_polygons_from_drawn_blocky_and_soft_masks(photos):
    """A polygon tool's chords put most of its outline on long straight runs; a drawn, blocky or
    soft mask has few (development photos: 0.73-1.0 against at most 0.52)."""
    limit = refine.RefineParams().polygon_share
    for index, (_, truth, _) in enumerate(photos):
        rng = np.random.default_rng(index)
        assert refine.straight_share(polygon(truth, rng)) >= limit
        for mask in (truth, blocky(truth, rng), soft(truth, rng)):
            assert refine.straight_share(mask) < limit


def test_a_full_body_polygon_is_refined_in_a_band_that_reaches_its_chords(suite, predictor):
    """A full-body polygon's chords stray further from the person's edge than the W=50 band
    reaches; refine() widens a polygon's band to 5x its error from the model's edge. On the first
    8 held-out full-body photos, with these rules and the mean-of-six guide, 6 move: by -0.10 to +4.7
    IoU and -0.3 to +19.8 boundary F, a mean of +0.94 IoU and +4.5 boundary F."""
    paths = sorted((suite["ccp-full"] / "images").glob("*"))[:8]
    narrow = refine.RefineParams(polygon_reach=0.0)  # the W=50 band
    iou_gains, f_gains = rule_gains(paths, predictor, narrow)
    assert min(iou_gains) > -WORSE and np.mean(f_gains) > 0.01, (iou_gains, f_gains)


def test_a_polygons_matte_keeps_what_the_model_agrees_is_the_person(suite, predictor):
    """Inside a quick polygon, parts of a full-body person (a shoe on a grey pavement, a hand)
    have colours the matte alone cannot tell from the ground; refine() pulls the matte towards the
    polygon where the model agrees with it (polygon_pull). Chosen on the development photos (80
    CCP training polygons: 93.86 / 74.06 -> 94.93 / 77.28 IoU / boundary F; 160 PFCN: 98.17 /
    65.32 -> 98.21 / 66.30). On the first 8 held-out full-body photos, which this test runs (the
    mean-of-six guide), all 8 gain boundary F (+0.1 to +14.9), IoU moves by -0.13 to +5.3."""
    paths = sorted((suite["ccp-full"] / "images").glob("*"))[:8]
    iou_gains, f_gains = rule_gains(paths, predictor, refine.RefineParams(polygon_pull=0.0))
    assert min(iou_gains) > -WORSE and min(f_gains) >= 0 and np.mean(f_gains) > 0.01, (iou_gains, f_gains)


def test_a_cut_deeper_than_the_annotations_error_must_be_clear_in_the_matte(predictor):
    """The clear-matte rule (step 5): a region deeper than 1.5 x the annotation's error must be clear
    in the matte, so half-transparent hair the annotation includes stays. Made with an earlier
    guide on PFCN train 02105, whose blocky annotation it kept from being made worse. With this
    release's guide the cuts it stops are shallower: over the first 240 development photos (blocky
    and soft, the whole proposal's guard at 0.08) it leaves the annotations made worse by over 0.5
    IoU points the same (6 and 2) and those losing over 0.2 points 12 instead of 17. On PFCN train
    00081 (the development runs' blocky annotation of it), without the rule the proposal loses 0.46
    points; with it, nothing."""
    path = DATA_ROOT / "pfcn" / "train" / "images" / "00081.jpg"
    if not path.is_file():
        pytest.skip(f"real photo not found at {path}")
    image, truth = read_pair(path)
    coarse = blocky(truth, np.random.default_rng([47, *b"blocky"]))  # the development runs' annotation of it
    confidence = predictor(image).confidence
    lenient = replace(refine.RefineParams(), min_gain=0.08)
    off = replace(lenient, clear_depth=np.inf)
    with_rule, without = (foreground_iou(refine.refine(image, coarse, confidence, params=p).mask, truth)
                          for p in (lenient, off))
    before = foreground_iou(coarse, truth)
    assert with_rule > before - 0.001 and without < before - 0.003, (before, with_rule, without)


def test_a_good_annotation_is_kept(photos):
    for image, truth, confidence in photos:
        result = refine.refine(image, truth, confidence)
        assert foreground_iou(result.mask, truth) > 0.995
        assert not result.changed or result.confidence >= result.params.min_gain


def test_confidence_ranks_sloppy_annotations_above_good_ones(photos):
    image, truth, confidence = photos[0]
    sloppy = cv2.dilate(truth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21)))
    worse, good = refine.refine(image, sloppy, confidence), refine.refine(image, truth, confidence)
    assert worse.changed and not worse.doubtful and worse.confidence > good.confidence + 0.1


def test_every_mask_type_gives_the_same_proposal_and_bad_ones_are_refused(photos):
    image, truth, confidence = photos[1]
    coarse = polygon(truth, np.random.default_rng(0))
    binary = coarse > 127
    results = [refine.refine(image, m, confidence).mask
               for m in (coarse, binary, binary.astype(np.uint8), binary.astype(np.float32), binary.astype(np.int64))]
    assert all((r == results[0]).all() for r in results)
    bad = {"2-D": np.zeros((*binary.shape, 3), np.uint8), "photo is": binary[:-1],
           "float mask": binary * 2.0, "0..255": binary.astype(np.int32) * 1000, "bool, integer or float": binary.astype(str)}
    for message, mask in bad.items():
        with pytest.raises(ValueError, match=message):
            refine.refine(image, mask, confidence)
    with pytest.raises(ValueError, match="float mask"):
        refine.refine(image, np.where(binary, np.nan, 0.0), confidence)


def test_band_width_is_in_pixels(photos):
    image, truth, confidence = photos[2]
    coarse = polygon(truth, np.random.default_rng(0))
    narrow = refine.refine(image, coarse, confidence, refine.RefineParams(band_px=10))
    wide = refine.refine(image, coarse, confidence, refine.RefineParams(band_px=60))
    assert (narrow.band_px, wide.band_px) == (10, 60)
    edges = cv2.Canny(coarse, 100, 200) > 0
    # a band k pixels across covers about k pixels per pixel of edge
    for result in (narrow, wide):
        assert 0.6 * result.band_px < result.band.sum() / edges.sum() < 1.2 * result.band_px
    assert not (narrow.mask != coarse)[~narrow.band].any()


def test_matting_keeps_known_pixels_and_finds_the_edge(photos):
    image, truth, _ = photos[3]
    binary = truth > 127
    unknown = cv2.dilate(cv2.Canny(truth, 100, 200), np.ones((9, 9), np.uint8)) > 0
    known = np.where(unknown, 0.5, binary)  # the unknown values must not leak into the answer
    alpha = solve_alpha(image, known, unknown)
    assert (alpha[~unknown] == binary[~unknown]).all()
    assert foreground_iou(alpha > 0.5, binary) > 0.97


def test_matting_pulls_unknown_pixels_towards_the_known_values_by_their_weight(photos):
    image, truth, _ = photos[3]
    unknown = cv2.dilate(cv2.Canny(truth, 100, 200), np.ones((9, 9), np.uint8)) > 0
    guess = cv2.erode(truth, np.ones((9, 9), np.uint8)) > 127  # a wrong guess: 4 px inside the edge
    free = solve_alpha(image, guess, unknown)
    assert (solve_alpha(image, guess, unknown, np.zeros(unknown.shape)) == free).all()
    pulled = solve_alpha(image, guess, unknown, np.full(unknown.shape, 100.0))
    assert np.abs(pulled - guess)[unknown].mean() < 0.05 < np.abs(free - guess)[unknown].mean()
    assert (pulled[~unknown] == guess[~unknown]).all()


def test_the_model_guides_refinement_on_a_photo_where_upsampling_overshot(pfcn_paths, predictor):
    """Upsampled to 800x600, this photo's confidence reached 1.0000001, which refine() refused."""
    [path] = [p for p in pfcn_paths if p.stem == "00864"]
    image, truth = read_pair(path)
    confidence = predictor(image).confidence
    assert 0 <= confidence.min() and confidence.max() <= 1
    result = refine.refine(image, polygon(truth, np.random.default_rng(0)), confidence)
    assert foreground_iou(result.mask, truth) > 0.9


def test_the_preconditioner_retries_shifts_without_printing(capsys):
    from pymatting.preconditioner.ichol import ichol
    from scipy.sparse import csc_matrix

    from data_tools.matting import SHIFTS, quiet_ichol

    matrix = csc_matrix(np.array([[1.0, 2.0], [2.0, 1.0]]))  # indefinite: the first shifts fail
    ichol(matrix, shifts=list(SHIFTS))
    assert "PERFORMANCE WARNING" in capsys.readouterr().out  # pymatting's own call prints each retry
    preconditioner = quiet_ichol(matrix)
    assert capsys.readouterr().out == ""
    assert np.isfinite(preconditioner(np.array([1.0, 2.0]))).all()


def test_proposals_rank_likely_improvements_first_and_apply_records_provenance(pfcn_paths, predictor, tmp_path):
    dataset = Dataset.create(tmp_path / "ds")
    rng = np.random.default_rng(0)
    for index, path in enumerate(pfcn_paths[:3]):
        _, truth = read_pair(path)
        dataset.add(path.stem, path.read_bytes(), ".jpg", truth if index == 0 else polygon(truth, rng))
    dataset.save()
    proposals = refine.propose_all(dataset, predictor, list(dataset))
    keys = [(not p.refinement.changed, -p.refinement.confidence) for p in proposals]
    assert keys == sorted(keys) and proposals[0].refinement.changed
    before = sha256_bytes(dataset.mask_path(proposals[0].sample).read_bytes())
    refine.apply(dataset, proposals[0], DEFAULT_MODEL)
    dataset.save()
    sample = Dataset.open(tmp_path / "ds")[proposals[0].sample.id]
    step = sample.history[-1]
    assert sample.kind == "refined" and step.action == "refine"
    assert step.details["method"] == refine.METHOD and step.details["model"] == DEFAULT_MODEL
    assert step.details["band_px"] == proposals[0].refinement.band_px and step.details["original_sha256"] == before
    assert step.details["confidence"] == round(proposals[0].refinement.confidence, 4)
    assert step.sha256 == sha256_bytes(dataset.mask_path(sample).read_bytes()) != before


def test_cli_ranks_and_applies_only_changed_masks(pfcn_paths, tmp_path, capsys):
    dataset = Dataset.create(tmp_path / "ds")
    for index, path in enumerate(pfcn_paths[:2]):
        _, truth = read_pair(path)
        dataset.add(path.stem, path.read_bytes(), ".jpg", truth if index == 0 else polygon(truth, np.random.default_rng(0)))
    dataset.save()
    assert refine.main([str(tmp_path / "ds"), "--apply", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "refined 1 of 2 masks" in out and "keep" in out
    with pytest.raises(SystemExit):
        refine.main([str(tmp_path / "ds"), "--band-px", "-3"])
