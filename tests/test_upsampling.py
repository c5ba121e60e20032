"""Guided upsampling of the confidence: the mask's edge on the photo's edge, on a drawn photo and on real ones."""
import numpy as np
import pytest
from skimage import data

from banet import DEFAULT_MODEL, Predictor, load_model
from banet.metrics import boundary_f_score, foreground_iou
from banet.predictor import shrink
from banet.upsampling import GuidedFilter, guided_upsample, upsample
from benchmarks import upsampling as upsampling_benchmark
from training.config import DATA_ROOT
from workbench.models import Predictors
from workbench.settings import Settings, parse_args


def _edge_column(mask: np.ndarray) -> float:
    """Mean column of the first person pixel in each row."""
    return float(np.argmax(mask, axis=1).mean())


def test_the_mask_edge_moves_onto_the_photos_edge():
    rng = np.random.default_rng(0)
    photo = np.empty((300, 400, 3), np.uint8)
    photo[:, :201] = (30, 50, 90)  # dark blue coat left of column 201, a light wall right of it
    photo[:, 201:] = (205, 185, 160)
    photo = np.clip(photo + rng.normal(0, 4, photo.shape), 0, 255).astype(np.uint8)
    working = shrink(photo, (75, 100))
    truth = np.zeros((75, 100), np.float32)
    truth[:, 49:] = 1  # the model's edge one working pixel (4 photo pixels) left of the photo's
    bilinear = upsample(truth, photo.shape[:2]) >= 0.5
    guided = guided_upsample(truth, working, photo) >= 0.5
    assert abs(_edge_column(bilinear) - 201) >= 3
    assert abs(_edge_column(guided) - 201) <= 1


def test_a_flat_map_stays_flat_and_every_size_works():
    photo = data.astronaut()
    for working_size in ((128, 128), (1, 1), (1, 9), (3, 2)):
        working = shrink(photo, working_size)
        out = guided_upsample(np.full(working_size, 0.3, np.float32), working, photo)
        assert out.shape == photo.shape[:2] and out.dtype == np.float32
        np.testing.assert_allclose(out, 0.3, atol=2e-3)


def test_the_output_is_a_confidence_in_zero_to_one():
    photo = data.astronaut()
    working = shrink(photo, (100, 100))
    noise = np.random.default_rng(1).random((100, 100), dtype=np.float32)
    out = guided_upsample(noise, working, photo, GuidedFilter(eps=1e-6))  # tiny eps: overshoots are clipped
    assert 0 <= out.min() and out.max() <= 1


def test_guided_edges_follow_real_photos_better(pfcn_pairs):
    """The shipped model on real PFCN test photos: boundary F against the human masks rises, IoU holds."""
    model = load_model()
    scores = {}
    for way in ("guided", "bilinear"):
        predictor = Predictor(model, device="cpu", upsampling=way)
        masks = [predictor(image).mask for image, _ in pfcn_pairs]
        scores[way] = [np.mean([f(m, truth > 127) for m, (_, truth) in zip(masks, pfcn_pairs)])
                       for f in (foreground_iou, boundary_f_score)]
    (iou_guided, f_guided), (iou_bilinear, f_bilinear) = scores["guided"], scores["bilinear"]
    assert f_guided > f_bilinear + 0.01
    assert iou_guided > iou_bilinear - 0.002


def test_an_unknown_upsampling_is_refused(fitted_model):
    with pytest.raises(ValueError, match="upsampling must be one of bilinear, guided"):
        Predictor(fitted_model, device="cpu", upsampling="bicubic")


def test_the_app_serves_guided_masks_when_the_operator_asks(pfcn_pairs):
    assert parse_args([]).upsampling == "bilinear"
    with pytest.raises(ValueError, match="upsampling must be one of bilinear, guided"):
        Settings(upsampling="bicubic")
    photo, _ = pfcn_pairs[0]
    guided = Predictors(upsampling=parse_args(["--upsampling", "guided"]).upsampling)(DEFAULT_MODEL)(photo)
    bilinear = Predictors()(DEFAULT_MODEL)(photo)
    assert np.array_equal(guided.working_confidence, bilinear.working_confidence)  # the same network output
    assert 0.001 < np.mean(guided.mask != bilinear.mask) < 0.02  # moved along the edges only


@pytest.mark.skipif(not (DATA_ROOT / "ccp").is_dir(), reason="needs ../shared/data")
def test_the_parameter_benchmark_scores_both_upsamplings_on_training_photos(capsys):
    """`python -m benchmarks.upsampling` (where GuidedFilter's defaults were chosen) runs end to end: once it
    broke because the Predictor keeps the working image only when it upsamples with the guided filter."""
    upsampling_benchmark.main(["--limit", "2"])
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[3:]}
    assert list(rows) == ["bilinear", "guided 0.5, 2, 0.001"]
    assert lines[1].count("(2)") == 7  # seven domains of two photos each
    for cells in rows.values():
        iou, boundary_f = (float(v) for v in cells[0].split(" / "))  # pfcn-train: PFCN portraits the model knows
        assert iou > 90 and 20 < boundary_f <= 100
