"""Refine loss and the total loss on real PFCN masks and photos."""
import cv2
import numpy as np
import torch

from banet import BANet, BANetLoss, RefineLoss
from banet.gradients import to_tensor
from banet.targets import boundary_band

from .helpers import make_batch


def _shift(mask: np.ndarray, dx: int) -> np.ndarray:
    return np.roll(mask, dx, axis=1)


def _refine(image: np.ndarray, pred: np.ndarray, band: np.ndarray) -> float:
    return float(RefineLoss()(to_tensor(image), to_tensor(pred), to_tensor(band.astype(np.float32))))


def test_refine_loss_is_zero_when_prediction_edges_follow_image_edges(pfcn_pairs):
    _, mask = pfcn_pairs[0]
    band = boundary_band(mask)
    # A photo whose only edge in the band is the portrait's, at half the image's full contrast
    # (black and white corner patches, far from the portrait, set the range): the mask is then
    # aligned with it and lambda = 1.5 times as sharp, so both refine terms vanish.
    gray = (64 + mask // 2).astype(np.uint8)
    gray[:8, :8], gray[:8, -8:] = 0, 255
    assert not band[:9, :9].any() and not band[:9, -9:].any()
    image = np.dstack([gray] * 3)
    assert _refine(image, mask, band) < 1e-5  # float-level zero; the misaligned mask costs > 0.05
    assert _refine(image, _shift(mask, 8), band) > 0.05


def test_refine_loss_prefers_the_annotation_over_a_misplaced_mask_on_a_real_photo(pfcn_pairs):
    for rgb, mask in pfcn_pairs[:4]:
        band = boundary_band(mask)
        assert _refine(rgb, mask, band) < _refine(rgb, _shift(mask, 12), band)


def test_refine_loss_ignores_everything_outside_the_band(pfcn_pairs):
    rgb, mask = pfcn_pairs[0]
    band = boundary_band(mask)
    far = cv2.erode((~band).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # beyond Sobel's reach
    noisy = mask.copy()
    noisy[far & (np.indices(mask.shape).sum(0) % 7 == 0)] ^= 255
    assert _refine(rgb, noisy, band) == _refine(rgb, mask, band)


def test_total_loss_terms_follow_the_weights_and_switches(pfcn_pairs):
    torch.manual_seed(0)
    image, mask, band = make_batch(pfcn_pairs[:2], (96, 64))
    out = BANet()(image)
    terms = BANetLoss(alpha=0.6, beta=0.3, gamma=0.1)(out, image, mask, band)
    expected = 0.6 * terms.segmentation + 0.3 * terms.boundary + 0.1 * terms.refine
    assert torch.isclose(terms.total, expected)
    assert terms.boundary > 0 and terms.refine > 0
    pretrain = BANetLoss(gamma=0.0)(out, image, mask, band)  # stage 1: no refine loss
    assert pretrain.refine == 0 and torch.isclose(pretrain.total, 0.6 * terms.segmentation + 0.3 * terms.boundary)
    base = BANetLoss()(BANet(boundary_attention=False)(image), image, mask, band)
    assert base.boundary == 0


def test_the_metrics_sobel_is_the_refine_losss_sobel(pfcn_pairs):
    """The views and metrics take NumPy arrays through OpenCV; the loss runs `SobelGradient` on tensors.
    Both give the same gradients of a real photo's normalised luma, of a soft map and of a 0/255 mask."""
    from banet.gradients import SobelGradient, map_gradients, normalize_gray, photo_gradients

    rgb, mask = pfcn_pairs[0]
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 3)
    sobel = SobelGradient()
    with torch.inference_mode():
        pairs = [(photo_gradients(rgb), sobel(normalize_gray(to_tensor(rgb)))),
                 (map_gradients(soft), sobel(to_tensor(soft))), (map_gradients(mask), sobel(to_tensor(mask)))]
    for fast, reference in pairs:
        assert fast.gx.shape == reference.gx.shape == (1, 1, *mask.shape)
        assert reference.magnitude.max() > 0.1  # real edges, not an empty comparison
        for a, b in zip(fast, reference):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
