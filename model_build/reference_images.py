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


def generated_gray_faces(size: int) -> np.ndarray:
    """uint8 [7, size, size] made from formulas (and numpy's seeded PCG64, stable across platforms): a
    drawn face (oval, eyes, a smile or a frown), a gradient, a checkerboard, noise, black, white."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1) * 2 - 1
    face = np.where(rows**2 / 0.9 + cols**2 / 0.6 < 1, 170.0, 40.0)
    for eye_x in (-0.35, 0.35):
        face[(rows + 0.25) ** 2 + (cols - eye_x) ** 2 < 0.01] = 20
    smile, frown = face.copy(), face.copy()
    mouth = (np.abs(cols) < 0.4) & (np.abs(rows - 0.45 - 0.6 * cols**2) < 0.05)
    frown[mouth] = 30  # rows grow downwards: the corners of this mouth are lower than its middle
    smile[(np.abs(cols) < 0.4) & (np.abs(rows - 0.6 + 0.6 * cols**2) < 0.05)] = 30
    gradient = (rows + 1) * 127.5
    checker = ((np.floor((rows + 1) * 4) + np.floor((cols + 1) * 4)) % 2) * 255
    noise = np.random.default_rng(0).integers(0, 256, size=(size, size))
    images = [smile, frown, gradient, checker, noise, np.zeros((size, size)), np.full((size, size), 255.0)]
    return np.clip(np.round(np.stack(images)), 0, 255).astype(np.uint8)


def mood_fixture_crops(reference_npz: str, size: int) -> np.ndarray:
    """uint8 [K, size, size]: the faces of scikit-image's astronaut and of the composite, cut as meaa cuts
    them (``meaa.cropping.crop_faces``, margin 0, at the boxes facenet-pytorch found, stored in
    tests/data/reference_outputs.npz), each also mirrored, then ``generated_gray_faces``. Used to pin
    each shipped mood model's outputs (tests/unit/test_mood_models.py, model_build/reference_outputs.py)."""
    from meaa.cropping import crop_faces

    crops = []
    with np.load(reference_npz) as reference:
        for name, rgb in (("astronaut", astronaut_rgb()), ("composite", composite_rgb())):
            boxes, landmarks = reference[f"detect_{name}_boxes"], reference[f"detect_{name}_landmarks"]
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])
            crops.append(crop_faces(bgr, boxes, landmarks, size, margin=0.0, align=False))
    faces = np.concatenate(crops)
    return np.concatenate([faces, faces[:, :, ::-1], generated_gray_faces(size)])
