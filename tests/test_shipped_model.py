"""The bundled default weights really segment portraits: mean IoU on 20 fixed PFCN test photos."""
import numpy as np

from banet import DEFAULT_MODEL, Predictor, load_model
from banet.metrics import foreground_iou

from .helpers import read_pair

# Measured 2026-11-25 on these 20 photos: mean IoU 0.9570 (python -m training.evaluate --limit 20).
# The floor leaves room for platform differences in resizing and float sums, not for a worse model.
IOU_FLOOR = 0.95


def test_default_weights_reach_the_floor_on_pfcn_test(pfcn_paths):
    predictor = Predictor(load_model(DEFAULT_MODEL), device="cpu")
    ious = []
    for path in pfcn_paths[:20]:
        image, mask = read_pair(path)
        ious.append(foreground_iou(predictor(image).mask, mask > 127))
    assert np.mean(ious) >= IOU_FLOOR, f"mean IoU {np.mean(ious):.4f} on {len(ious)} PFCN test photos"
    assert min(ious) > 0.5  # no photo is missed entirely
