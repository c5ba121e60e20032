"""Predictor: every input kind and mode, EXIF, batching, backends and their parity, clear errors."""
import io
import logging
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from banet import BANet, DEFAULT_MODEL, ImageLoadError, OnnxBackend, Predictor, TorchBackend, auto_device, load_rgb
from banet import export
from banet.backends import SPINNING
from banet.export import cache_dir, export_onnx
from banet.predictor import shrink
from workbench.models import Predictors


@pytest.fixture(scope="module")
def predictor(fitted_model):
    return Predictor(fitted_model, device="cpu", backend="torch")


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


def test_outputs_are_upsampled_only_when_read(predictor, pfcn_pairs):
    result = predictor(pfcn_pairs[0][0])
    assert result.working_confidence.shape == (160, 120)  # the fitted model's working size
    result.mask
    assert "confidence" in vars(result) and "attention" not in vars(result)  # cached_property slots
    assert result.attention.shape == (800, 600) and "attention" in vars(result)


def test_a_resized_prediction_is_the_same_prediction_at_display_size(predictor, pfcn_pairs):
    full = predictor(pfcn_pairs[0][0])
    shown = full.resized(400, threshold=0.3)
    assert shown.image.shape == (400, 300, 3) and shown.confidence.shape == shown.attention.shape == (400, 300)
    assert shown.threshold == 0.3 and full.threshold == 0.5  # the original is left as it was
    assert abs(shown.mask.mean() - (full.confidence >= 0.3).mean()) < 0.01
    assert full.resized(1000).image is full.image  # never enlarged


@pytest.mark.parametrize("size", [(256, 192), (255, 191), (100, 75), (700, 500)])
def test_shrinking_matches_area_averaging_on_a_real_photo(pfcn_pairs, size):
    rgb = pfcn_pairs[0][0][:799]  # an odd height too
    shrunk = shrink(rgb, size)
    area = cv2.resize(rgb, size[::-1], interpolation=cv2.INTER_AREA)
    assert shrunk.shape == (*size, 3) and shrunk.dtype == np.uint8
    assert np.abs(shrunk.astype(int) - area).mean() < 2.5  # grey levels: the same picture, softer at most


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
    quiet = OnnxBackend(path, spin=False)  # threads that wait without spinning: same outputs
    assert quiet.session.get_session_options().get_session_config_entry(SPINNING) == "0"
    assert onnx_predictor.backend.session.get_session_options().get_session_config_entry(SPINNING) == "1"
    assert np.array_equal(Predictor(quiet)(rgb).confidence, onnx_result.confidence)


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the app runs PyTorch")
def test_the_apps_predictors_leave_the_cores_to_the_panels_between_calls():
    backend = Predictors()(DEFAULT_MODEL).backend
    assert isinstance(backend, OnnxBackend)
    assert backend.session.get_session_options().get_session_config_entry(SPINNING) == "0"


def test_cpu_default_is_onnx_runtime_exported_once_per_weights(fitted_model, predictor, pfcn_pairs, onnx_cache):
    first = Predictor(fitted_model, device="cpu")
    assert isinstance(first.backend, OnnxBackend) and cache_dir() == onnx_cache
    files = sorted(onnx_cache.glob("*.onnx"))
    inodes = [os.stat(f).st_ino for f in files]  # an export writes a new file and renames it
    second = Predictor(fitted_model, device="cpu")
    assert isinstance(second.backend, OnnxBackend)
    assert sorted(onnx_cache.glob("*.onnx")) == files and [os.stat(f).st_ino for f in files] == inodes
    rgb = pfcn_pairs[0][0]
    assert np.abs(second(rgb).confidence - predictor(rgb).confidence).max() < 1e-4
    other = BANet(input_size=160).eval()  # other weights: another file
    Predictor(other, device="cpu")
    assert len(list(onnx_cache.glob("*.onnx"))) == len(files) + 1


def test_the_export_cache_keeps_the_most_recently_used_graphs(monkeypatch, tmp_path):
    monkeypatch.setattr(export, "CACHE_FILES", 2)
    torch.manual_seed(0)
    models = [BANet(width=16, input_size=64).eval() for _ in range(3)]
    first = export.cached_onnx(models[0], tmp_path)
    second = export.cached_onnx(models[1], tmp_path)
    os.utime(first, (1, 1))  # long unused
    export.cached_onnx(models[0], tmp_path)  # used again: now the newest
    third = export.cached_onnx(models[2], tmp_path)
    assert sorted(tmp_path.glob("*.onnx")) == sorted([first, third]) and not second.exists()


def test_unwritable_cache_falls_back_to_pytorch_with_a_warning(fitted_model, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BANET_CACHE", str(blocker / "cache"))
    with caplog.at_level(logging.WARNING, logger="banet.backends"):
        fallback = Predictor(BANet(input_size=160), device="cpu")
    assert isinstance(fallback.backend, TorchBackend)
    assert "ONNX Runtime unavailable" in caplog.text
    with pytest.raises(OSError):  # asked for explicitly: no silent fallback
        Predictor(BANet(input_size=160), device="cpu", backend="onnxruntime")
    with pytest.raises(ValueError, match="backend must be one of"):
        Predictor(fitted_model, backend="tensorrt")


def test_int8_export_keeps_the_masks_and_the_training_size(fitted_model, predictor, pfcn_paths, pfcn_pairs, tmp_path):
    float32 = export_onnx(fitted_model, tmp_path / "banet.onnx")
    int8 = export.quantize_int8(float32, tmp_path / "banet.int8.onnx", pfcn_paths[8:12], fitted_model.input_size)
    assert int8.stat().st_size < float32.stat().st_size / 2  # int8 weights
    quantized = Predictor(OnnxBackend(int8))
    assert quantized.input_size == 160  # the metadata survives quantisation
    for rgb, _ in pfcn_pairs[:2]:
        agree = (quantized(rgb).mask == predictor(rgb).mask).mean()
        assert 0.97 < agree < 1.0  # close to float32, yet not the float32 graph


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
