"""Predictor: every input kind and mode, EXIF, batching, ONNX parity, clear errors."""
import io

import numpy as np
import pytest
from PIL import Image

from banet import ImageLoadError, OnnxBackend, Predictor, auto_device, load_rgb
from banet.export import export_onnx


@pytest.fixture(scope="module")
def predictor(fitted_model):
    return Predictor(fitted_model, device="cpu")


def test_outputs_are_at_the_input_resolution(predictor, pfcn_paths):
    result = predictor(pfcn_paths[0])
    h, w = result.image.shape[:2]
    assert (h, w) == (800, 600)
    assert result.confidence.shape == result.attention.shape == result.mask.shape == (h, w)
    assert result.confidence.dtype == np.float32 and 0 <= result.confidence.min() <= result.confidence.max() <= 1
    assert result.mask.dtype == bool
    for field in (result.image_gradient, result.prediction_gradient):
        assert field.magnitude.shape == field.angle.shape == (h, w)
    assert result.seconds > 0


def test_real_photo_masks_overlap_the_annotation(predictor, pfcn_pairs):
    """The briefly fitted model finds most of the person on the photos it saw."""
    from banet.metrics import foreground_iou

    ious = [foreground_iou(predictor(rgb).mask, mask) for rgb, mask in pfcn_pairs]
    assert np.mean(ious) > 0.6


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA", "I", "F"])
def test_every_pil_mode_is_accepted(predictor, pfcn_pairs, mode):
    rgb = pfcn_pairs[0][0]
    pil = Image.fromarray(rgb)
    if mode == "I;16":
        pil = Image.fromarray(np.asarray(pil.convert("L")).astype(np.uint16) * 257)
    elif mode in ("I", "F"):
        pil = pil.convert("L").convert(mode)
    else:
        pil = pil.convert(mode)
    result = predictor(pil)
    assert result.image.shape == rgb.shape and result.image.dtype == np.uint8
    gray = np.asarray(Image.fromarray(rgb).convert("L"), dtype=float)
    if mode in ("L", "I;16", "LA", "I", "F"):  # grey images keep their grey levels
        assert np.abs(result.image[..., 0] - gray).max() <= 1


def test_arrays_of_any_layout_and_depth(predictor, pfcn_pairs):
    rgb = pfcn_pairs[0][0]
    reference = predictor(rgb).confidence
    as_float = predictor(rgb.astype(np.float32) / 255).confidence
    as_16bit = predictor(rgb.astype(np.uint16) * 257).confidence
    with_alpha = predictor(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).confidence
    for other in (as_float, as_16bit, with_alpha):
        assert np.abs(other - reference).max() < 1e-5
    assert predictor(rgb[..., 0]).confidence.shape == rgb.shape[:2]


def test_exif_orientation_is_honoured(predictor, pfcn_pairs, tmp_path):
    rgb = pfcn_pairs[0][0]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; viewers rotate 90 degrees clockwise
    stored = Image.fromarray(np.rot90(rgb).copy())
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    loaded = load_rgb(path)
    assert loaded.shape == rgb.shape  # upright again
    assert loaded.flags.writeable  # callers may draw on it
    assert np.abs(loaded.astype(int) - rgb).mean() < 3  # JPEG noise only
    assert predictor(path).mask.shape == rgb.shape[:2]


def test_batches_match_single_predictions(predictor, pfcn_pairs):
    images = [pfcn_pairs[0][0], pfcn_pairs[1][0][:500, :400], pfcn_pairs[2][0]]
    batch = predictor.predict_batch(images)
    for image, result in zip(images, batch):
        assert result.confidence.shape == image.shape[:2]
        assert np.abs(result.confidence - predictor(image).confidence).max() < 1e-5


def test_onnx_runtime_gives_the_same_masks(fitted_model, predictor, pfcn_pairs, tmp_path):
    path = export_onnx(fitted_model, tmp_path / "banet.onnx")
    onnx_predictor = Predictor(OnnxBackend(path))
    assert onnx_predictor.input_size == predictor.input_size == 160  # carried in the ONNX metadata
    for rgb, _ in pfcn_pairs[:4]:
        torch_result, onnx_result = predictor(rgb), onnx_predictor(rgb)
        assert np.abs(torch_result.confidence - onnx_result.confidence).max() < 1e-4
        assert np.abs(torch_result.attention - onnx_result.attention).max() < 1e-4
        assert (torch_result.mask == onnx_result.mask).mean() > 0.9999
        assert 0.05 < torch_result.mask.mean() < 0.95  # a real mask, not a constant


def test_device_auto_selection_picks_an_available_device():
    assert auto_device().type in ("cuda", "mps", "cpu")


def test_bad_inputs_raise_clear_errors(predictor, tmp_path):
    fake = tmp_path / "photo.jpg"
    fake.write_text("not an image at all")
    with pytest.raises(ImageLoadError, match="photo.jpg: not a readable image"):
        predictor(fake)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(buffer.getvalue()[:60])
    with pytest.raises(ImageLoadError, match="cut.png"):
        predictor(truncated)
    with pytest.raises(ImageLoadError, match="file not found"):
        predictor(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="shape"):
        predictor(np.zeros((4, 4, 2), np.uint8))
