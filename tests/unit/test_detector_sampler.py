"""The detector's area sampler against a plain loop over torch's area rule (adaptive average pooling).

facenet-pytorch resamples pyramid levels and crops with ``interpolate(mode="area")``: output i of n -> size
averages inputs floor(i*n/size) .. ceil((i+1)*n/size) - 1. The sampler reads those means from integral
images with gathers; here they are summed pixel by pixel, so an indexing slip in the gathers shows up.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from meaa.detector import _AreaSampler


def area_resize(image_rgb: np.ndarray, size_h: int, size_w: int) -> np.ndarray:
    """Adaptive average pooling, written out: float64 [size_h, size_w, 3]."""
    height, width = image_rgb.shape[:2]
    out = np.empty((size_h, size_w, 3))
    for i in range(size_h):
        top, bottom = (i * height) // size_h, math.ceil((i + 1) * height / size_h)
        for j in range(size_w):
            left, right = (j * width) // size_w, math.ceil((j + 1) * width / size_w)
            out[i, j] = image_rgb[top:bottom, left:right].reshape(-1, 3).mean(axis=0)
    return out


def as_network_input(mean_rgb: np.ndarray) -> np.ndarray:
    return np.moveaxis((mean_rgb - 127.5) / 128.0, -1, 0)


@pytest.fixture(scope="module")
def image_bgr() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, size=(97, 131, 3), dtype=np.uint8)


@pytest.mark.parametrize("scale", [0.5, 0.37, 0.121, 1.6])  # halving, uneven windows, tiny, enlarging
def test_pyramid_level_is_the_area_mean(image_bgr: np.ndarray, scale: float) -> None:
    level = _AreaSampler(image_bgr).level(scale)
    size_h, size_w = int(97 * scale + 1), int(131 * scale + 1)
    assert level.shape == (1, 3, size_h, size_w) and level.dtype == np.float32
    expected = as_network_input(area_resize(image_bgr[:, :, ::-1], size_h, size_w))
    np.testing.assert_allclose(level[0], expected, atol=1e-5)


def test_crops_are_the_area_mean_of_each_clipped_box(image_bgr: np.ndarray) -> None:
    # One-based boxes (MTCNN's convention): pixels trunc(x1)-1 .. trunc(x2)-1, clipped to the image.
    boxes = np.array(
        [[1.0, 1.0, 24.0, 24.0], [10.7, 20.2, 70.9, 61.5], [-15.0, 50.0, 30.0, 130.0], [120.0, 90.0, 160.0, 99.0]],
        np.float32,
    )
    crops = _AreaSampler(image_bgr).crops(boxes, 24)
    assert crops.shape == (4, 3, 24, 24)
    rgb = image_bgr[:, :, ::-1]
    for crop, (x1, y1, x2, y2) in zip(crops, np.trunc(boxes).astype(int), strict=True):
        left, top = min(max(x1, 1), 131) - 1, min(max(y1, 1), 97) - 1
        right, bottom = max(min(x2, 131), left + 1), max(min(y2, 97), top + 1)
        expected = as_network_input(area_resize(rgb[top:bottom, left:right], 24, 24))
        np.testing.assert_allclose(crop, expected, atol=1e-5)
