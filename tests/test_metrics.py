"""Metrics against values computed by hand on small arrays, then on real masks."""
import numpy as np
import pytest

from banet.metrics import (
    boundary_f_score,
    boundary_iou,
    evaluate_pair,
    false_positive_area,
    foreground_iou,
    gradient_alignment,
    two_class_miou,
)


def _rows(n_rows: int, size: int = 20) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[:n_rows] = True
    return mask


def test_iou_and_miou_by_hand():
    gt = np.zeros((4, 4), bool)
    gt[:2, :3] = True  # 6 pixels
    pred = np.zeros((4, 4), bool)
    pred[:2, :2] = True  # 4 pixels, all inside gt
    assert foreground_iou(pred, gt) == pytest.approx(4 / 6)
    # background: gt has 10, pred has 12, they share 10 -> 10/12
    assert two_class_miou(pred, gt) == pytest.approx((4 / 6 + 10 / 12) / 2)
    assert foreground_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert foreground_iou(pred.astype(np.uint8) * 255, gt) == pytest.approx(4 / 6)
    assert false_positive_area(pred, gt) == 0.0  # every predicted pixel is person
    pred[3, :2] = True  # 2 of the 10 background pixels
    assert false_positive_area(pred, gt) == pytest.approx(2 / 10)
    assert false_positive_area(pred, np.ones((4, 4), bool)) == 0.0  # no background to get wrong


def test_every_mask_encoding_reads_the_same():
    truth = _rows(7)
    for encoded in (truth, truth.astype(np.uint8), truth.astype(np.uint8) * 255, truth.astype(np.float32),
                    truth.astype(np.int64), truth * 0.9 + 0.05):
        assert foreground_iou(encoded, truth) == 1.0, encoded.dtype


def test_boundary_f_by_hand():
    gt = _rows(10)  # contour: row 9, 20 pixels (image borders are not contour)
    pred = _rows(10)
    pred[10:13, 10:] = True
    # pred contour: row 9 cols 0-9 (10), (9,10) (1), col 10 rows 10-12 (3), row 12 cols 11-19 (9) = 23;
    # on gt's contour exactly: row 9 cols 0-10 = 11. P = 11/23, R = 11/20, F = 242/473.
    assert boundary_f_score(pred, gt, tolerance=0.5) == pytest.approx(242 / 473)
    assert boundary_f_score(_rows(13), gt, tolerance=2) == 0.0  # 3 px away
    assert boundary_f_score(_rows(13), gt, tolerance=3) == 1.0
    assert boundary_f_score(gt, gt) == 1.0


def test_boundary_iou_by_hand():
    # 20x20 image: d = round(0.02 * hypot(20, 20)) = 1, and the image border counts as boundary.
    # gt rows 0-9: band = rows 0 and 9 + cols 0,19 of rows 1-8 = 56; pred rows 0-11: rows 0 and 11
    # + cols 0,19 of rows 1-10 = 60; shared: row 0 (20) + cols 0,19 rows 1-8 (16) + (9,0),(9,19) = 38.
    assert boundary_iou(_rows(12), _rows(10)) == pytest.approx(38 / (56 + 60 - 38))
    assert boundary_iou(_rows(10), _rows(10)) == 1.0


def test_gradient_alignment_extremes_by_construction():
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    assert gradient_alignment(mask, np.dstack([mask] * 3)) == pytest.approx(1.0, abs=1e-4)
    flat = np.full((64, 64, 3), 128, np.uint8)  # no image edge anywhere
    assert gradient_alignment(mask, flat) == pytest.approx(0.0, abs=1e-6)


def test_metrics_rank_a_misplaced_mask_below_the_annotation_on_real_photos(pfcn_pairs):
    for rgb, mask in pfcn_pairs[:4]:
        exact = evaluate_pair(mask, mask, rgb)
        shifted = evaluate_pair(np.roll(mask, 15, axis=1), mask, rgb)
        assert exact["iou"] == exact["boundary_f"] == exact["boundary_iou"] == 1.0
        for key in ("iou", "miou", "boundary_f", "boundary_iou", "gradient_alignment"):
            assert shifted[key] < exact[key], key
