"""Test images built only from scikit-image's bundled photos, identical in every venv.

Used by verify.py (reference venv) to produce tests/data/reference_outputs.npz and by the tests
(main venv) to rebuild the same pixels: only numpy slicing, no resampling, so no library version
can change a pixel.
"""

from __future__ import annotations

import numpy as np
from skimage import data


def astronaut_rgb() -> np.ndarray:
    """512x512 RGB uint8, one face (Eileen Collins)."""
    return np.ascontiguousarray(data.astronaut())


def composite_rgb() -> np.ndarray:
    """512x1280 RGB uint8 with faces at three scales: astronaut | cameraman | two half-size astronauts.

    Half size is every second pixel (no interpolation); the lower half-size copy is mirrored.
    """
    astronaut = astronaut_rgb()
    camera = np.repeat(data.camera()[:, :, None], 3, axis=2)
    half = astronaut[::2, ::2]
    right = np.concatenate([half, half[:, ::-1]], axis=0)
    return np.ascontiguousarray(np.concatenate([astronaut, camera, right], axis=1))


def no_face_rgb() -> np.ndarray:
    """scikit-image's coffee cup (400x600 RGB uint8): no face."""
    return np.ascontiguousarray(data.coffee())


def mtcnn_normalise(rgb_nchw_uint8: np.ndarray) -> np.ndarray:
    """MTCNN's input scaling, (x - 127.5) / 128, exact in float32."""
    return (rgb_nchw_uint8.astype(np.float32) - np.float32(127.5)) * np.float32(0.0078125)


def emotion_normalise(gray_uint8: np.ndarray) -> np.ndarray:
    """fer's input scaling for [N, 64, 64] uint8 gray crops -> [N, 1, 64, 64] float32, x / 255 * 2 - 1."""
    x = gray_uint8.astype(np.float32) / np.float32(255.0)
    return (x * np.float32(2.0) - np.float32(1.0))[:, None, :, :]
