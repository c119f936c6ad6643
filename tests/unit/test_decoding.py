"""meaa.decoding: typed errors for bad input, caps enforced from headers, correct pixels and orientation."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from devkit.images import (
    UNSUPPORTED_SAMPLES,
    bmp_top_down,
    bmp_with_claimed_size,
    encode,
    exif_app1_payload,
    jpeg_with_claimed_size,
    jpeg_without_frame_header,
    pattern_image,
    png_16bit,
    png_bgra,
    png_chunk,
    png_raw,
    png_with_claimed_size,
    webp_with_vp8x,
    with_app1,
    with_exif_orientation,
)
from meaa.config import DecodeSettings
from meaa.decoding import EncodedImage, decode_image, read_image_header, read_image_size
from meaa.errors import ImageTooLarge, InvalidImage, InvalidInput, MeaaError, UnsupportedFormat

MAX_BYTES = 20 * 1024 * 1024  # the service's defaults (meaa.config.Settings)
MAX_PIXELS = 50_000_000
HEIGHT, WIDTH = 48, 64  # not square, so a swapped width/height shows


def decode(data: bytes, **caps: int) -> np.ndarray:
    limits = DecodeSettings(
        max_image_bytes=caps.get("max_bytes", MAX_BYTES), max_image_pixels=caps.get("max_pixels", MAX_PIXELS)
    )
    return decode_image(data, limits)


def bgr() -> np.ndarray:
    return pattern_image(HEIGHT, WIDTH)


def jpeg() -> bytes:
    return encode(bgr(), ".jpg", jpeg_quality=95)


def png() -> bytes:
    return encode(bgr(), ".png")


def webp_lossy() -> bytes:
    return encode(bgr(), ".webp", webp_quality=90)


def webp_lossless() -> bytes:
    return encode(bgr(), ".webp", webp_quality=101)


def bmp() -> bytes:
    return encode(bgr(), ".bmp")


def cut(make: Callable[[], bytes], fraction: float) -> Callable[[], bytes]:
    return lambda: make()[: max(1, int(len(make()) * fraction))]


def cut_at(make: Callable[[], bytes], length: int) -> Callable[[], bytes]:
    return lambda: make()[:length]


def random_bytes(seed: int, size: int = 4096) -> bytes:
    return np.random.default_rng(seed).bytes(size)


OK = (HEIGHT, WIDTH, 3)

# (id, input builder, expected error class or expected output shape); MeaaError means "any typed error"
BAD_AND_ODD_INPUTS: list[tuple[str, Callable[[], bytes], type[MeaaError] | tuple[int, int, int]]] = [
    ("empty", lambda: b"", InvalidImage),
    ("jpeg_soi_only", cut_at(jpeg, 2), InvalidImage),
    ("jpeg_cut_in_app0", cut_at(jpeg, 10), InvalidImage),
    ("jpeg_cut_at_100_bytes", cut_at(jpeg, 100), InvalidImage),
    ("jpeg_cut_at_25pct", cut(jpeg, 0.25), InvalidImage),
    ("jpeg_cut_at_50pct", cut(jpeg, 0.5), InvalidImage),
    ("jpeg_cut_at_90pct", cut(jpeg, 0.9), InvalidImage),
    ("jpeg_missing_last_byte", lambda: jpeg()[:-1], InvalidImage),
    ("jpeg_without_sof", jpeg_without_frame_header, InvalidImage),
    ("png_signature_only", cut_at(png, 8), InvalidImage),
    ("png_cut_in_ihdr", cut_at(png, 20), InvalidImage),
    ("png_cut_at_50pct", cut(png, 0.5), InvalidImage),
    ("png_missing_last_byte", lambda: png()[:-1], InvalidImage),
    ("png_zero_width", lambda: png_with_claimed_size(0, 10), InvalidImage),
    ("webp_riff_header_only", cut_at(webp_lossy, 12), InvalidImage),
    ("webp_cut_in_vp8_header", cut_at(webp_lossy, 26), InvalidImage),
    ("webp_cut_at_50pct", cut(webp_lossy, 0.5), InvalidImage),
    ("webp_lossless_cut_at_50pct", cut(webp_lossless, 0.5), InvalidImage),
    ("bmp_cut_in_header", cut_at(bmp, 20), InvalidImage),
    ("bmp_cut_at_50pct", cut(bmp, 0.5), InvalidImage),
    ("random_bytes", lambda: np.random.default_rng(1).bytes(4096), InvalidImage),
    # Random "headers" may claim any size, so any typed error is right here (MeaaError = any subclass).
    *(
        (f"random_bytes_after_jpeg_soi_{seed}", (lambda seed=seed: b"\xff\xd8\xff" + random_bytes(seed)), MeaaError)
        for seed in range(5)
    ),
    ("random_bytes_after_png_signature", lambda: png()[:8] + np.random.default_rng(3).bytes(4096), InvalidImage),
    ("text", lambda: b"hello, this is not an image\n", InvalidImage),
    ("html", lambda: b"<!DOCTYPE html><html><body><img src='x.jpg'></body></html>", InvalidImage),
    ("json", lambda: b'{"image": "base64..."}', InvalidImage),
    ("png_claiming_100000x100000", lambda: png_with_claimed_size(100_000, 100_000), ImageTooLarge),
    ("png_claiming_10000x6000", lambda: png_with_claimed_size(10_000, 6_000), ImageTooLarge),
    ("jpeg_sof_claiming_60000x60000", lambda: jpeg_with_claimed_size(60_000, 60_000), ImageTooLarge),
    ("bmp_claiming_100000x100000_top_down", lambda: bmp_with_claimed_size(100_000, -100_000), ImageTooLarge),
    ("webp_vp8x_claiming_16384x16384", lambda: webp_with_vp8x(webp_lossy(), 16_384, 16_384), ImageTooLarge),
    ("webp_animated", lambda: webp_with_vp8x(webp_lossy(), flags=0x02), UnsupportedFormat),
    ("jpeg_1x1", lambda: encode(pattern_image(1, 1), ".jpg"), (1, 1, 3)),
    ("png_1x1", lambda: encode(pattern_image(1, 1), ".png"), (1, 1, 3)),
    ("png_16bit", lambda: png_16bit(HEIGHT, WIDTH)[0], OK),
    ("png_bgra", lambda: png_bgra(pattern_image(HEIGHT, WIDTH, channels=4)), OK),
    ("png_gray", lambda: encode(pattern_image(HEIGHT, WIDTH, channels=1), ".png"), OK),
    ("png_gray_alpha", lambda: png_raw(np.zeros((HEIGHT, WIDTH, 2), np.uint8), color_type=4), OK),
    ("png_palette", lambda: png_raw(np.zeros((HEIGHT, WIDTH), np.uint8), 3, palette=np.eye(3) * 255), OK),
    ("jpeg_gray", lambda: encode(pattern_image(HEIGHT, WIDTH, channels=1), ".jpg"), OK),
    ("jpeg_progressive", lambda: encode(bgr(), ".jpg", jpeg_progressive=1), OK),
    ("bmp", bmp, OK),
    ("bmp_gray_palette", lambda: encode(pattern_image(HEIGHT, WIDTH, channels=1), ".bmp"), OK),
    ("bmp_bgra", lambda: encode(pattern_image(HEIGHT, WIDTH, channels=4), ".bmp"), OK),
    ("bmp_top_down", lambda: bmp_top_down(bgr()), OK),
    ("webp_lossy", webp_lossy, OK),
    ("webp_lossless", webp_lossless, OK),
    ("webp_alpha", lambda: encode(pattern_image(HEIGHT, WIDTH, channels=4), ".webp"), OK),
    ("webp_vp8x", lambda: webp_with_vp8x(webp_lossy()), OK),
    ("jpeg_exif_orientation_6", lambda: with_exif_orientation(jpeg(), 6), (WIDTH, HEIGHT, 3)),
    ("jpeg_exif_8_after_jfif", lambda: with_exif_orientation(jpeg(), 8, after_app0=True), (WIDTH, HEIGHT, 3)),
    ("jpeg_exif_orientation_out_of_range", lambda: with_exif_orientation(jpeg(), 9), OK),
    ("jpeg_exif_garbage", lambda: with_app1(jpeg(), b"Exif\x00\x00MM\x00*\xff\xff\xff\xff"), OK),
    ("jpeg_exif_truncated_ifd", lambda: with_app1(jpeg(), exif_app1_payload(6)[:20]), OK),
    *(
        (f"unsupported_{name}", (lambda sample=sample: sample), UnsupportedFormat)
        for name, sample in UNSUPPORTED_SAMPLES.items()
    ),
]


@pytest.mark.parametrize(
    ("make", "expected"),
    [pytest.param(make, expected, id=name) for name, make, expected in BAD_AND_ODD_INPUTS],
)
def test_bad_and_odd_inputs_give_typed_errors_or_bgr_images(
    make: Callable[[], bytes], expected: type[MeaaError] | tuple[int, int, int]
) -> None:
    data = make()
    if isinstance(expected, tuple):
        image = decode(data)
        assert image.dtype == np.uint8 and image.shape == expected and image.flags.c_contiguous
    else:
        with pytest.raises(expected) as raised:
            decode(data)
        error = raised.value
        assert expected is MeaaError or type(error) is expected
        assert error.to_dict() == {"code": type(error).code, "message": error.message}
        assert error.code != MeaaError.code and error.message


def test_error_classes_map_to_http_statuses() -> None:
    assert (InvalidImage.http_status, UnsupportedFormat.http_status, ImageTooLarge.http_status) == (400, 415, 413)


@pytest.mark.parametrize("not_bytes", ["a string", None, 12, np.zeros(4, np.uint8)])
def test_non_bytes_input_is_invalid_input(not_bytes: object) -> None:
    with pytest.raises(InvalidInput):
        decode(not_bytes)  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted() -> None:
    expected = decode(png())
    assert np.array_equal(decode(bytearray(png())), expected)
    assert np.array_equal(decode(memoryview(png())), expected)


@pytest.mark.parametrize("make", [jpeg, png, webp_lossy, bmp], ids=["jpeg", "png", "webp", "bmp"])
def test_pixel_cap_is_inclusive_and_checked_against_the_header(make: Callable[[], bytes]) -> None:
    data = make()
    assert decode(data, max_pixels=WIDTH * HEIGHT).shape == OK
    with pytest.raises(ImageTooLarge, match=f"{WIDTH}x{HEIGHT}"):
        decode(data, max_pixels=WIDTH * HEIGHT - 1)


def test_byte_cap_is_inclusive() -> None:
    data = png()
    assert decode(data, max_bytes=len(data)).shape == OK
    with pytest.raises(ImageTooLarge, match=str(len(data))):
        decode(data, max_bytes=len(data) - 1)


def test_byte_cap_is_checked_before_the_format() -> None:
    with pytest.raises(ImageTooLarge):
        decode(b"not an image at all", max_bytes=4)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "bmp"])
def test_random_corruption_gives_only_typed_errors_or_images(fmt: str) -> None:
    """Seeded mutations of a valid file: truncations and flipped bytes anywhere, headers included."""
    source = {"jpeg": jpeg, "png": png, "webp": webp_lossy, "bmp": bmp}[fmt]()
    rng = np.random.default_rng(7)
    for _ in range(60):
        mutated = bytearray(source[: rng.integers(1, len(source) + 1)])
        for position in rng.integers(0, len(mutated), size=rng.integers(1, 4)):
            mutated[position] = rng.integers(0, 256)
        try:
            image = decode(bytes(mutated))
        except MeaaError:
            continue
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


# --- correct pixels ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [png, webp_lossless, bmp, lambda: bmp_top_down(bgr())], ids=["png", "webp_lossless", "bmp", "bmp_top_down"]
)
def test_lossless_formats_round_trip_exactly(make: Callable[[], bytes]) -> None:
    assert np.array_equal(decode(make()), bgr())


@pytest.mark.parametrize(("make", "tolerance"), [(jpeg, 3.0), (webp_lossy, 4.0)], ids=["jpeg_q95", "webp_q90"])
def test_lossy_formats_round_trip_within_tolerance(make: Callable[[], bytes], tolerance: float) -> None:
    decoded = decode(make()).astype(np.float32)
    assert np.abs(decoded - bgr()).mean() < tolerance


def test_gray_becomes_three_equal_channels() -> None:
    gray = pattern_image(HEIGHT, WIDTH, channels=1)
    decoded = decode(encode(gray, ".png"))
    assert all(np.array_equal(decoded[..., channel], gray) for channel in range(3))


def test_16bit_png_is_scaled_by_1_over_257_with_rounding() -> None:
    data, samples = png_16bit(HEIGHT, WIDTH)
    expected = np.round(samples / 257.0).astype(np.uint8)
    decoded = decode(data)
    assert np.array_equal(decoded, expected)
    # Truncation (v >> 8) would differ on many of these random samples.
    assert not np.array_equal(decoded, (samples >> 8).astype(np.uint8))


def test_16bit_gray_extremes() -> None:
    samples = np.array([[0, 128, 129, 257, 32767, 65535]], np.uint16)
    decoded = decode(png_raw(samples, color_type=0, bit_depth=16))
    assert decoded[0, :, 0].tolist() == [0, 0, 1, 1, 127, 255]


def test_alpha_is_composited_over_white() -> None:
    bgra = np.zeros((2, 4, 4), np.uint8)
    bgra[..., :3] = (40, 80, 120)
    bgra[0, :, 3] = (0, 64, 128, 255)
    bgra[1, :, 3] = 255
    decoded = decode(png_bgra(bgra))
    alpha = bgra[..., 3:].astype(np.float64) / 255
    expected = np.round(bgra[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    assert np.abs(decoded.astype(int) - expected).max() <= 1
    assert decoded[0, 0].tolist() == [255, 255, 255] and decoded[0, 3].tolist() == [40, 80, 120]


def test_gray_alpha_and_palette_transparency_are_composited_over_white() -> None:
    gray_alpha = np.array([[[100, 0], [100, 255]]], np.uint8)
    assert decode(png_raw(gray_alpha, color_type=4))[0].tolist() == [[255] * 3, [100] * 3]
    palette = np.array([[255, 0, 0], [0, 0, 255]])  # RGB: red, blue
    indices = np.array([[0, 1]], np.uint8)
    decoded = decode(png_raw(indices, color_type=3, palette=palette, transparency=b"\x00"))
    assert decoded[0].tolist() == [[255, 255, 255], [255, 0, 0]]  # transparent red -> white; blue (BGR)


def test_16bit_rgba_png_is_scaled_then_composited() -> None:
    rgba = np.zeros((1, 2, 4), np.uint16)
    rgba[..., :3] = 257 * 200
    rgba[..., 3] = (0, 65535)
    assert decode(png_raw(rgba, color_type=6, bit_depth=16))[0].tolist() == [[255] * 3, [200] * 3]


def test_bmp_fourth_byte_is_ignored_not_treated_as_alpha() -> None:
    bgra = pattern_image(HEIGHT, WIDTH, channels=4)
    bgra[..., 3] = 0  # typical of 32-bit BI_RGB files: the byte is padding
    assert np.array_equal(decode(encode(bgra, ".bmp")), bgra[..., :3])


# --- header reader ----------------------------------------------------------------------------------

ALL_FORMAT_SAMPLES: list[tuple[str, Callable[[], bytes]]] = [
    ("jpeg", jpeg),
    ("jpeg", lambda: encode(bgr(), ".jpg", jpeg_progressive=1)),
    ("jpeg", lambda: encode(pattern_image(HEIGHT, WIDTH, channels=1), ".jpg")),
    ("png", png),
    ("png", lambda: png_16bit(HEIGHT, WIDTH)[0]),
    ("png", lambda: png_bgra(pattern_image(HEIGHT, WIDTH, channels=4))),
    ("webp", webp_lossy),
    ("webp", webp_lossless),
    ("webp", lambda: encode(pattern_image(HEIGHT, WIDTH, channels=4), ".webp")),
    ("webp", lambda: webp_with_vp8x(webp_lossless())),
    ("bmp", bmp),
    ("bmp", lambda: bmp_top_down(bgr())),
    ("bmp", lambda: encode(pattern_image(HEIGHT, WIDTH, channels=1), ".bmp")),
    *(("jpeg", (lambda o=o: with_exif_orientation(jpeg(), o))) for o in range(1, 9)),
]


@pytest.mark.parametrize(
    ("fmt", "make"), ALL_FORMAT_SAMPLES, ids=[f"{fmt}{i}" for i, (fmt, _) in enumerate(ALL_FORMAT_SAMPLES)]
)
def test_header_size_agrees_with_decoded_shape(fmt: str, make: Callable[[], bytes]) -> None:
    data = make()
    found_format, width, height = read_image_size(data)
    assert found_format == fmt
    assert decode(data).shape == (height, width, 3)


@pytest.mark.parametrize(("width", "height"), [(1, 1), (65535, 3), (3, 65535), (16383, 16383)])
def test_header_reader_handles_extreme_sizes(width: int, height: int) -> None:
    assert read_image_size(jpeg_with_claimed_size(width, height)) == ("jpeg", width, height)
    assert read_image_size(png_with_claimed_size(width, height)) == ("png", width, height)
    assert read_image_size(bmp_with_claimed_size(width, -height)) == ("bmp", width, height)
    assert read_image_size(webp_with_vp8x(webp_lossy(), width, height)) == ("webp", width, height)


def test_header_reader_raises_the_same_typed_errors() -> None:
    with pytest.raises(InvalidImage):
        read_image_size(b"")
    with pytest.raises(UnsupportedFormat):
        read_image_size(UNSUPPORTED_SAMPLES["gif89a"])
    with pytest.raises(InvalidImage):
        read_image_size(png()[:20])


# --- EXIF orientation -------------------------------------------------------------------------------


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """What a camera stores so that applying EXIF ``orientation`` shows ``upright`` (numpy only)."""
    return {
        1: lambda a: a,
        2: np.fliplr,
        3: lambda a: np.rot90(a, 2),
        4: np.flipud,
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, 1),  # shown after a 90 degree clockwise turn
        7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
        8: lambda a: np.rot90(a, -1),  # shown after a 90 degree counter-clockwise turn
    }[orientation](upright)


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut, cropped to 512 x 384 so a transposition changes the shape."""
    return np.ascontiguousarray(skimage_data.astronaut()[:, 64:448, ::-1])


@pytest.mark.parametrize("byte_order", ["<", ">"], ids=["intel", "motorola"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(astronaut_bgr: np.ndarray, orientation: int, byte_order: str) -> None:
    stored = np.ascontiguousarray(stored_for_orientation(astronaut_bgr, orientation))
    data = with_exif_orientation(encode(stored, ".jpg", jpeg_quality=95), orientation, byte_order)

    decoded = decode(data)

    assert decoded.shape == astronaut_bgr.shape
    assert read_image_size(data) == ("jpeg", astronaut_bgr.shape[1], astronaut_bgr.shape[0])
    assert np.abs(decoded.astype(np.float32) - astronaut_bgr).mean() < 3.0
    # OpenCV's own EXIF handling (IMREAD_COLOR) must agree pixel for pixel.
    assert np.array_equal(decoded, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    # The test means something: ignoring the tag would not give the upright picture.
    if orientation != 1:
        as_stored = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        assert as_stored.shape != decoded.shape or np.abs(as_stored.astype(np.float32) - astronaut_bgr).mean() > 20


def test_exif_orientation_is_reported_by_the_header_reader() -> None:
    header = read_image_header(with_exif_orientation(jpeg(), 8, ">"))
    assert (header.format, header.width, header.height, header.orientation) == ("jpeg", WIDTH, HEIGHT, 8)
    assert read_image_header(with_exif_orientation(jpeg(), 3, after_app0=True)).orientation == 3
    assert read_image_header(jpeg()).orientation == 1


def test_exif_after_the_jfif_segment_is_honoured_like_opencv_does(astronaut_bgr: np.ndarray) -> None:
    stored = np.ascontiguousarray(stored_for_orientation(astronaut_bgr, 6))
    data = with_exif_orientation(encode(stored, ".jpg", jpeg_quality=95), 6, after_app0=True)
    decoded = decode(data)
    assert np.array_equal(decoded, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    assert np.abs(decoded.astype(np.float32) - astronaut_bgr).mean() < 3.0


# --- bounded decoding: caps from the headers, lean conversions ---------------------------------------


def test_alpha_composite_matches_the_integer_formula_for_every_colour_and_alpha() -> None:
    colour = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    alpha = np.tile(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    bgra = np.dstack([colour, colour, colour, alpha])
    decoded = decode(png_bgra(bgra))
    wide = colour.astype(np.uint32)
    expected = ((wide * alpha + 255 * (255 - alpha.astype(np.uint32)) + 127) // 255).astype(np.uint8)
    assert all(np.array_equal(decoded[..., channel], expected) for channel in range(3))


def test_16bit_rgba_is_narrowed_and_composited_in_place_across_bands() -> None:
    """Taller than one conversion band, so band boundaries are exercised (each band is written over the
    front of the decoder's buffer)."""
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 65536, size=(700, 900, 4), dtype=np.uint16)
    decoded = decode(png_raw(rgba, color_type=6, bit_depth=16))
    eight = np.round(rgba / 257.0).astype(np.uint32)
    colour, alpha = eight[..., :3], eight[..., 3:]
    expected = ((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)[..., ::-1]  # RGB -> BGR
    assert decoded.flags.c_contiguous and np.array_equal(decoded, expected)


def test_png_text_and_animation_chunks_are_dropped_without_changing_pixels() -> None:
    plain = png()
    at = plain.index(b"IDAT") - 4
    text = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * 100_000))
    animation = png_chunk(b"acTL", struct.pack(">II", 2, 0))
    assert np.array_equal(decode(plain[:at] + text + animation + plain[at:]), decode(plain))


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: jpeg_with_claimed_size(7000, 7000), InvalidImage, "promises 7000x7000"),
        (lambda: jpeg()[:-2], InvalidImage, "truncated"),
        (lambda: jpeg().replace(b"\xff\xc0", b"\xff\xc9", 1), UnsupportedFormat, "Arithmetic-coded JPEG"),
        (lambda: jpeg().replace(b"\xff\xc0", b"\xff\xc3", 1), UnsupportedFormat, "Lossless JPEG"),
        (lambda: png_with_claimed_size(7000, 7000), InvalidImage, "promises 7000x7000"),
        (lambda: webp_with_vp8x(webp_lossy(), 7000, 7000), InvalidImage, "canvas"),
        (lambda: bmp_with_claimed_size(7000, 7000), InvalidImage, "promises 7000x7000"),
    ],
    ids=[
        "jpeg_header_lie",
        "jpeg_without_eoi",
        "jpeg_arithmetic",
        "jpeg_lossless",
        "png_header_lie",
        "webp_canvas_lie",
        "bmp_header_lie",
    ],
)
def test_headers_that_promise_what_the_file_cannot_hold_are_refused_before_decoding(
    make: Callable[[], bytes], error: type[MeaaError], words: str
) -> None:
    with pytest.raises(error, match=words):
        EncodedImage.parse(make(), DecodeSettings())


def test_jpeg_scans_are_counted_against_the_cap() -> None:
    progressive = encode(bgr(), ".jpg", jpeg_progressive=1)  # libjpeg's script: 10 scans for colour
    assert decode(progressive).shape == OK
    with pytest.raises(ImageTooLarge, match="more than 9 scans"):
        EncodedImage.parse(progressive, DecodeSettings(max_jpeg_scans=9))


def test_decode_memory_is_checked_against_the_cap_at_each_size() -> None:
    data = encode(pattern_image(480, 640), ".jpg", jpeg_progressive=1)
    encoded = EncodedImage.parse(data, DecodeSettings())
    full, eighth = encoded.decode_bytes(1), encoded.decode_bytes(8)
    assert full > eighth > 640 * 480 * 3  # a progressive JPEG holds its coefficients at every scale
    tight = EncodedImage.parse(data, DecodeSettings(max_decode_bytes=eighth))
    assert tight.decode(8).image.shape == (60, 80, 3)
    with pytest.raises(ImageTooLarge, match="MB; the limit is"):
        tight.decode(1)
    with pytest.raises(ImageTooLarge):
        EncodedImage.parse(png(), DecodeSettings(max_decode_bytes=1000))


@pytest.mark.parametrize("reduction", [2, 4, 8])
def test_jpeg_reduced_decoding_is_the_image_at_that_scale(astronaut_bgr: np.ndarray, reduction: int) -> None:
    data = encode(astronaut_bgr, ".jpg", jpeg_quality=95)
    encoded = EncodedImage.parse(data, DecodeSettings())
    decoded = encoded.decode(reduction)
    height, width = astronaut_bgr.shape[:2]
    assert decoded.image.shape == (-(-height // reduction), -(-width // reduction), 3)
    assert (decoded.reduction, decoded.original_size, decoded.scale) == (reduction, (width, height), 1 / reduction)
    assert encoded.reduced_size(reduction) == decoded.image.shape[1::-1]
    area = cv2.resize(astronaut_bgr, decoded.image.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(decoded.image.astype(np.float32) - area).mean() < 4.0


def test_reduced_decoding_applies_exif_orientation(astronaut_bgr: np.ndarray) -> None:
    stored = np.ascontiguousarray(stored_for_orientation(astronaut_bgr, 6))
    encoded = EncodedImage.parse(with_exif_orientation(encode(stored, ".jpg", jpeg_quality=95), 6), DecodeSettings())
    decoded = encoded.decode(4)
    assert decoded.original_size == (astronaut_bgr.shape[1], astronaut_bgr.shape[0])
    upright = cv2.resize(astronaut_bgr, decoded.image.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(decoded.image.astype(np.float32) - upright).mean() < 4.0


def test_only_jpeg_decodes_at_reduced_size() -> None:
    encoded = EncodedImage.parse(png(), DecodeSettings())
    assert encoded.reductions == (1,)
    with pytest.raises(ValueError, match="reductions"):
        encoded.decode(2)


# --- the pipeline decodes large JPEGs at reduced size (meaa.pipeline) --------------------------------


@pytest.mark.parametrize(
    ("width", "height", "reduction"),
    [(640, 480, 1), (1280, 720, 2), (1920, 1080, 2), (4000, 3000, 4), (7000, 7000, 8), (8000, 400, 2), (2560, 160, 1)],
)
def test_detection_reduction_keeps_the_long_side_and_the_smallest_face(width: int, height: int, reduction: int) -> None:
    from devkit.hostile_inputs import flat_jpeg
    from meaa.config import DetectionSettings
    from meaa.pipeline import _detection_reduction

    encoded = EncodedImage.parse(flat_jpeg(width, height), DecodeSettings())
    assert _detection_reduction(encoded, DetectionSettings()) == reduction
    assert _detection_reduction(encoded, DetectionSettings(detect_max_side=0)) == 1
    assert _detection_reduction(encoded, DetectionSettings(min_face_fraction=0.0)) == 1


def _same_faces(reduced, full, box_px: int, mood_diff: float) -> None:
    assert (reduced.width, reduced.height) == (full.width, full.height)
    assert len(reduced.faces) == len(full.faces) >= 1
    for a, b in zip(sorted(reduced.faces, key=lambda f: f.box), sorted(full.faces, key=lambda f: f.box), strict=True):
        assert max(abs(p - q) for p, q in zip(a.box, b.box, strict=True)) <= box_px, (a.box, b.box)
        assert max(abs(a.moods[m] - b.moods[m]) for m in a.moods) <= mood_diff
        assert a.mood == b.mood


def test_a_1080p_jpeg_gives_the_faces_of_a_full_size_decode() -> None:
    from devkit.sample_faces import one_face_frame
    from meaa import MoodEstimator

    data = encode(cv2.resize(one_face_frame(640, 480), (1920, 1080), interpolation=cv2.INTER_CUBIC), ".jpg")
    estimator = MoodEstimator()
    reduced = estimator.analyze(data)
    _same_faces(reduced, estimator.analyze(decode_image(data, estimator.settings.decoding)), box_px=3, mood_diff=0.02)
    assert reduced.timings_ms["decode"] > 0


def test_small_faces_are_cropped_from_a_finer_decode() -> None:
    """A 2560x1920 photo is detected at 1/4 size (640x480); a face of about 250 px is about 60 px there, under
    1.25x the mood model's 64 px input, so its crop comes from a 1/2-size decode."""
    from devkit.sample_faces import astronaut_bgr
    from meaa import MoodEstimator
    from meaa.pipeline import _crop_source, _detection_reduction

    canvas = np.full((1920, 2560, 3), 90, np.uint8)
    canvas[500:1400, 800:1700] = cv2.resize(astronaut_bgr(), (900, 900), interpolation=cv2.INTER_CUBIC)
    data = encode(canvas, ".jpg", jpeg_quality=92)
    estimator = MoodEstimator()
    engine = estimator._engine
    encoded = EncodedImage.parse(data, estimator.settings.decoding)
    decoded = encoded.decode(_detection_reduction(encoded, estimator.settings.detection))
    detections = engine.detector.detect_faces(decoded.image)
    assert decoded.reduction == 4 and len(detections) == 1
    side = float(max(detections.boxes[0, 2] - detections.boxes[0, 0], detections.boxes[0, 3] - detections.boxes[0, 1]))
    assert 40 <= side < 1.25 * engine.classifier.input_size <= 2 * side  # too small at 1/4, large enough at 1/2
    source = _crop_source(encoded, decoded, detections, engine.classifier.input_size)
    assert source.reduction == 2
    full = estimator.analyze(decode_image(data, estimator.settings.decoding))
    _same_faces(estimator.analyze(data), full, box_px=6, mood_diff=0.03)
