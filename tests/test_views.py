"""Inspect and Compare pictures: tints land on their regions only, on a real photo."""
import cv2
import numpy as np

from workbench.views import OVERLAY_COLOUR, difference_overlay, overlay


def _away_from_edges(mask: np.ndarray, pixels: int = 5) -> tuple[np.ndarray, np.ndarray]:
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    m = mask.astype(np.uint8)
    inside = cv2.erode(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0  # outlines run along the frame
    return inside, cv2.dilate(m, kernel) == 0


def test_the_mask_overlay_tints_the_person_and_leaves_the_rest(pfcn_pairs):
    rgb, truth = pfcn_pairs[0]
    mask = truth > 127
    out = overlay(rgb, mask)
    inside, outside = _away_from_edges(mask)
    assert (out[outside] == rgb[outside]).all()
    blend = 0.5 * rgb[inside].astype(float) + 0.5 * np.array(OVERLAY_COLOUR)
    assert np.abs(out[inside] - blend).max() <= 1


def test_the_difference_overlay_colours_each_kind_of_disagreement(pfcn_pairs):
    rgb, truth = pfcn_pairs[0]
    annotation = truth > 127
    prediction = np.roll(annotation, 40, axis=1)  # the person shifted right: both kinds of error
    out = difference_overlay(rgb, prediction, annotation).astype(int)
    shift = out - rgb
    for region, channel in ((prediction & ~annotation, 0), (~prediction & annotation, 2), (prediction & annotation, 1)):
        assert region.sum() > 1000
        assert np.argmax(shift[region].mean(axis=0)) == channel  # orange, sky blue, bluish green
    untouched = ~(prediction | annotation)
    assert (out[untouched] == rgb[untouched]).all()


def test_gradient_panels_show_the_photos_structure(pfcn_pairs):
    from banet.gradients import photo_gradients
    from banet.predictor import GradientField
    from workbench.views import gradient_picture

    rgb, _ = pfcn_pairs[0]
    g = photo_gradients(rgb)
    brightness = gradient_picture(GradientField(g.gx[0, 0].numpy(), g.gy[0, 0].numpy())).max(axis=2)
    assert np.percentile(brightness, 99) >= 250  # the strong edges at full brightness
    assert 40 <= np.median(brightness) < 250  # the weaker ones visible, not black; not all saturated


def test_panels_are_sent_as_faithful_jpegs_named_by_their_content(pfcn_pairs, tmp_path):
    from workbench.panels import jpeg_to_cache

    rgb, truth = pfcn_pairs[0]
    picture = overlay(rgb, truth > 127)
    path = jpeg_to_cache(picture, tmp_path)
    sent = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    assert sent.shape == picture.shape
    error = sent.astype(float) - picture
    assert 10 * np.log10(255 ** 2 / np.mean(error ** 2)) > 35  # PSNR in dB: outlines and tints intact
    assert jpeg_to_cache(picture.copy(), tmp_path) == path  # the same picture is one file
    assert jpeg_to_cache(rgb, tmp_path) != path
