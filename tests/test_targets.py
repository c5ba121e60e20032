"""Boundary-band targets follow the mask edge and widen with the portrait's size."""
import cv2
import numpy as np

from banet.metrics import contour
from banet.targets import band_width, boundary_band


def test_band_covers_the_mask_edge_and_stays_near_it(pfcn_pairs):
    for _, mask in pfcn_pairs:
        band = boundary_band(mask)
        edge = contour(mask)
        assert band[edge].mean() > 0.99  # the annotation's edge is inside the band
        distance = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 5)
        assert distance[band].max() <= band_width(mask) / 2 + 2  # and the band hugs that edge
        assert 0.02 < band.mean() < 0.4


def test_band_widens_with_portrait_size(pfcn_pairs):
    _, mask = pfcn_pairs[0]
    h, w = mask.shape
    half = cv2.resize(mask, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
    zoomed = cv2.resize(mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4], (w, h), interpolation=cv2.INTER_NEAREST)
    k_half, k_full, k_zoom = band_width(half), band_width(mask), band_width(zoomed)
    assert abs(k_half - k_full / 2) <= 1  # same portrait, half the pixels: half the width
    assert k_zoom > k_full  # a closer (larger) portrait in the same frame: wider


def test_band_width_follows_the_documented_formula():
    mask = np.zeros((1024, 1024), np.uint8)
    mask[:512, :512] = 255  # a portrait of exactly 512**2 pixels gets W = 50
    assert band_width(mask) == 50
    assert band_width(np.zeros((64, 64), np.uint8)) == 3  # empty mask: the minimum
    assert not boundary_band(np.zeros((64, 64), np.uint8)).any()
