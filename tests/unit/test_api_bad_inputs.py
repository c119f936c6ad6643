"""Bad-input corpus: every request a client can get wrong answers a 4xx with ``{"error": {code, message}}``.

Each case names the exact status and code it must get, so a case that starts passing for the wrong
reason (say, a 415 where a 400 is due) fails. A handful go through the Lambda entry point too.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest
from skimage import data

from devkit.lambda_loader import lambda_context

UPLOAD = "/upload-meaa-image"
MAX_IMAGE_BYTES = 4 * 1024 * 1024
BOUNDARY = "xXxMeaaBoundaryxXx"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def encode(bgr: np.ndarray, ext: str, **params: int) -> bytes:
    flags = [value for name, number in params.items() for value in (getattr(cv2, "IMWRITE_" + name.upper()), number)]
    ok, buffer = cv2.imencode(ext, bgr, flags)
    assert ok
    return buffer.tobytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_claimed_size(width: int, height: int) -> bytes:
    """Signature, an IHDR with a correct CRC claiming width x height RGB, a tiny IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x80" * 48)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_with_claimed_size(width: int, height: int) -> bytes:
    """A real 16x16 baseline JPEG whose SOF0 says width x height."""
    jpeg = bytearray(encode(np.full((16, 16, 3), 128, np.uint8), ".jpg"))
    sof = jpeg.index(b"\xff\xc0")  # FF C0, length(2), precision(1), height(2), width(2)
    struct.pack_into(">HH", jpeg, sof + 5, height, width)
    return bytes(jpeg)


def bmp_with_claimed_size(width: int, height: int) -> bytes:
    bmp = bytearray(encode(np.zeros((4, 4, 3), np.uint8), ".bmp"))
    struct.pack_into("<ii", bmp, 18, width, height)  # BITMAPINFOHEADER biWidth, biHeight
    return bytes(bmp)


UNSUPPORTED_SAMPLES = {
    "gif87a": b"GIF87a" + struct.pack("<HH", 8, 8) + b"\x00" * 16,
    "gif89a": b"GIF89a" + struct.pack("<HH", 8, 8) + b"\x00" * 16,
    "tiff_le": b"II*\x00\x08\x00\x00\x00" + b"\x00" * 16,
    "tiff_be": b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 16,
    "heic": struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic",
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
}


def _jpeg() -> bytes:
    rgb = cv2.resize(data.astronaut(), (160, 160), interpolation=cv2.INTER_AREA)
    return encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), ".jpg", jpeg_quality=85)


JPEG = _jpeg()
PNG = encode(cv2.cvtColor(cv2.resize(data.astronaut(), (64, 64)), cv2.COLOR_RGB2BGR), ".png")
WEBP = encode(cv2.cvtColor(cv2.resize(data.astronaut(), (64, 64)), cv2.COLOR_RGB2BGR), ".webp")
HUGE_PNG = png_with_claimed_size(100_000, 100_000)
RANDOM_BYTES = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
NON_UTF8 = b"\xff\xfe\xfa\xc3\x28\xa0\xa1\xe2\x28\xa1"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def multipart(*parts: tuple[str, bytes], boundary: str = BOUNDARY, close: bool = True) -> bytes:
    """Parts as (header block, payload); ``close=False`` leaves off the closing boundary."""
    body = b"".join(
        f"--{boundary}\r\n{headers}\r\n\r\n".encode("latin-1") + payload + b"\r\n" for headers, payload in parts
    )
    return body + (f"--{boundary}--\r\n".encode() if close else b"")


def file_part(payload: bytes, name: str = "file", filename: str = "face.jpg") -> tuple[str, bytes]:
    return (
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\nContent-Type: image/jpeg',
        payload,
    )


def text_part(name: str, value: str) -> tuple[str, bytes]:
    return (f'Content-Disposition: form-data; name="{name}"', value.encode())


def png_with_bad_crc() -> bytes:
    broken = bytearray(PNG)
    broken[29] ^= 0xFF  # last byte of IHDR's CRC
    return bytes(broken)


def png_zero_width() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 0, 16, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


def png_with_corrupt_idat() -> bytes:
    """Signature and IHDR intact, the compressed pixel data replaced by noise (CRC kept valid)."""
    ihdr = PNG[8 : 8 + 25]
    return b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", RANDOM_BYTES[:200]) + png_chunk(b"IEND", b"")


def jpeg_header_only() -> bytes:
    return JPEG[: JPEG.index(b"\xff\xda")]  # everything before the start of scan


@dataclass(frozen=True)
class Case:
    status: int
    code: str
    body: bytes = b""
    content_type: str | None = None
    method: str = "POST"
    path: str = UPLOAD
    headers: dict[str, str] = field(default_factory=dict)


def json_body(document: object) -> bytes:
    return json.dumps(document).encode()


CASES: dict[str, Case] = {
    # --- Content-Type the API does not take (415, before the body is read) ---
    "no-content-type": Case(415, "unsupported_media_type", JPEG),
    "text-plain": Case(415, "unsupported_media_type", JPEG, "text/plain"),
    "form-urlencoded": Case(415, "unsupported_media_type", b"file=" + JPEG[:100], "application/x-www-form-urlencoded"),
    "image-gif-type": Case(415, "unsupported_media_type", UNSUPPORTED_SAMPLES["gif89a"], "image/gif"),
    "image-tiff-type": Case(415, "unsupported_media_type", UNSUPPORTED_SAMPLES["tiff_le"], "image/tiff"),
    "image-heic-type": Case(415, "unsupported_media_type", UNSUPPORTED_SAMPLES["heic"], "image/heic"),
    "application-xml": Case(415, "unsupported_media_type", b"<image/>", "application/xml"),
    "video-mp4": Case(415, "unsupported_media_type", b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
    "multipart-mixed": Case(
        415, "unsupported_media_type", multipart(file_part(JPEG)), f"multipart/mixed; boundary={BOUNDARY}"
    ),
    "garbage-content-type": Case(415, "unsupported_media_type", JPEG, ";;;=="),
    "non-ascii-content-type": Case(415, "unsupported_media_type", JPEG, "imáge/jpeg"),
    # --- Raw bodies that are not a usable image ---
    "raw-zero-bytes": Case(400, "invalid_image", b"", "image/jpeg"),
    "raw-text": Case(400, "invalid_image", b"hello, this is not a picture", "image/jpeg"),
    "raw-random-bytes": Case(400, "invalid_image", RANDOM_BYTES, "application/octet-stream"),
    "raw-non-utf8": Case(400, "invalid_image", NON_UTF8, "image/png"),
    "raw-jpeg-soi-only": Case(400, "invalid_image", b"\xff\xd8", "image/jpeg"),
    "raw-jpeg-header-only": Case(400, "invalid_image", jpeg_header_only(), "image/jpeg"),
    "raw-jpeg-first-100-bytes": Case(400, "invalid_image", JPEG[:100], "image/jpeg"),
    "raw-jpeg-then-garbage": Case(400, "invalid_image", b"\xff\xd8\xff" + RANDOM_BYTES, "image/jpeg"),
    "raw-png-signature-only": Case(400, "invalid_image", PNG[:8], "image/png"),
    "raw-png-truncated": Case(400, "invalid_image", PNG[: len(PNG) // 2], "image/png"),
    "raw-png-bad-crc": Case(400, "invalid_image", png_with_bad_crc(), "image/png"),
    "raw-png-corrupt-idat": Case(400, "invalid_image", png_with_corrupt_idat(), "image/png"),
    "raw-png-zero-width": Case(400, "invalid_image", png_zero_width(), "image/png"),
    "raw-webp-truncated": Case(400, "invalid_image", WEBP[:20], "image/webp"),
    "raw-bmp-truncated": Case(400, "invalid_image", encode(np.zeros((8, 8, 3), np.uint8), ".bmp")[:20], "image/bmp"),
    "raw-gif-as-jpeg": Case(415, "unsupported_format", UNSUPPORTED_SAMPLES["gif87a"], "image/jpeg"),
    "raw-pdf-as-octet-stream": Case(415, "unsupported_format", UNSUPPORTED_SAMPLES["pdf"], "application/octet-stream"),
    "raw-tiff-as-png": Case(415, "unsupported_format", UNSUPPORTED_SAMPLES["tiff_be"], "image/png"),
    # --- Too large: bytes or pixels ---
    "raw-png-100000x100000": Case(413, "image_too_large", HUGE_PNG, "image/png"),
    "raw-jpeg-65000x65000": Case(413, "image_too_large", jpeg_with_claimed_size(65_000, 65_000), "image/jpeg"),
    "raw-bmp-60000x60000": Case(413, "image_too_large", bmp_with_claimed_size(60_000, 60_000), "image/bmp"),
    "raw-one-byte-over-cap": Case(
        413, "image_too_large", JPEG + b"\x00" * (MAX_IMAGE_BYTES + 1 - len(JPEG)), "image/jpeg"
    ),
    "raw-7mb-body": Case(413, "image_too_large", b"\x00" * 7_000_000, "image/jpeg"),
    # --- Broken multipart (400) and multipart without a usable file (422 / 400) ---
    "multipart-no-boundary": Case(400, "malformed_multipart", multipart(file_part(JPEG)), "multipart/form-data"),
    "multipart-empty-boundary": Case(
        400, "malformed_multipart", multipart(file_part(JPEG)), 'multipart/form-data; boundary=""'
    ),
    "multipart-wrong-boundary": Case(
        400, "malformed_multipart", multipart(file_part(JPEG), boundary="other"), MULTIPART
    ),
    "multipart-truncated-in-file": Case(
        400, "malformed_multipart", multipart(file_part(JPEG))[: 200 + len(JPEG) // 2], MULTIPART
    ),
    "multipart-no-closing-boundary": Case(
        400, "malformed_multipart", multipart(file_part(JPEG), close=False), MULTIPART
    ),
    "multipart-truncated-in-headers": Case(400, "malformed_multipart", multipart(file_part(JPEG))[:40], MULTIPART),
    "multipart-empty-body": Case(400, "malformed_multipart", b"", MULTIPART),
    "multipart-garbage-body": Case(400, "malformed_multipart", b"this is not multipart at all", MULTIPART),
    "multipart-non-utf8-body": Case(400, "malformed_multipart", NON_UTF8 * 10, MULTIPART),
    "multipart-header-without-colon": Case(
        400,
        "malformed_multipart",
        f"--{BOUNDARY}\r\nno colon here\r\n\r\n".encode() + JPEG + f"\r\n--{BOUNDARY}--\r\n".encode(),
        MULTIPART,
    ),
    "multipart-boundary-too-long": Case(
        400,
        "malformed_multipart",
        multipart(file_part(JPEG), boundary="b" * 300),
        "multipart/form-data; boundary=" + "b" * 300,
    ),
    "multipart-field-named-image": Case(422, "missing_field", multipart(file_part(JPEG, name="image")), MULTIPART),
    "multipart-text-fields-only": Case(422, "missing_field", multipart(text_part("subject", "p01")), MULTIPART),
    "multipart-no-content-disposition": Case(
        422, "missing_field", multipart(("Content-Type: image/jpeg", JPEG)), MULTIPART
    ),
    "multipart-two-files": Case(422, "invalid_input", multipart(file_part(JPEG), file_part(JPEG)), MULTIPART),
    "multipart-empty-file": Case(400, "invalid_image", multipart(file_part(b"")), MULTIPART),
    "multipart-text-file": Case(400, "invalid_image", multipart(file_part(b"just text")), MULTIPART),
    "multipart-non-utf8-filename-not-image": Case(
        400,
        "invalid_image",
        multipart(('Content-Disposition: form-data; name="file"; filename="f\xe9\xff.jpg"', NON_UTF8)),
        MULTIPART,
    ),
    "multipart-truncated-jpeg-file": Case(400, "invalid_image", multipart(file_part(JPEG[:100])), MULTIPART),
    "multipart-gif-file": Case(
        415, "unsupported_format", multipart(file_part(UNSUPPORTED_SAMPLES["gif89a"])), MULTIPART
    ),
    "multipart-huge-png-file": Case(413, "image_too_large", multipart(file_part(HUGE_PNG)), MULTIPART),
    "multipart-oversize-file": Case(
        413, "image_too_large", multipart(file_part(b"\xff" * (MAX_IMAGE_BYTES + 10))), MULTIPART
    ),
    # --- JSON ---
    "json-empty-body": Case(400, "invalid_json", b"", "application/json"),
    "json-truncated": Case(400, "invalid_json", json_body({"image_base64": b64(JPEG)})[:50], "application/json"),
    "json-not-json": Case(400, "invalid_json", b"image_base64=abc", "application/json"),
    "json-non-utf8": Case(400, "invalid_json", b'{"image_base64": "' + NON_UTF8 + b'"}', "application/json"),
    "json-deeply-nested": Case(400, "invalid_json", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "json-multipart-body": Case(400, "invalid_json", multipart(file_part(JPEG)), "application/json"),
    "json-raw-jpeg-body": Case(400, "invalid_json", JPEG, "application/json"),
    "json-array": Case(422, "invalid_input", json_body([b64(JPEG)]), "application/json"),
    "json-string": Case(422, "invalid_input", json_body(b64(JPEG)), "application/json"),
    "json-null": Case(422, "invalid_input", b"null", "application/json"),
    "json-number": Case(422, "invalid_input", b"42", "application/json"),
    "json-empty-object": Case(422, "missing_field", b"{}", "application/json"),
    "json-wrong-key": Case(422, "missing_field", json_body({"image": b64(JPEG)}), "application/json"),
    "json-key-case": Case(422, "missing_field", json_body({"Image_Base64": b64(JPEG)}), "application/json"),
    "json-base64-is-number": Case(422, "invalid_input", json_body({"image_base64": 123}), "application/json"),
    "json-base64-is-null": Case(422, "invalid_input", json_body({"image_base64": None}), "application/json"),
    "json-base64-is-list": Case(422, "invalid_input", json_body({"image_base64": [b64(JPEG)]}), "application/json"),
    "json-base64-is-object": Case(
        422, "invalid_input", json_body({"image_base64": {"data": b64(JPEG)}}), "application/json"
    ),
    "json-base64-bad-characters": Case(
        400, "invalid_base64", json_body({"image_base64": "!!!not*base64###"}), "application/json"
    ),
    "json-base64-bad-length": Case(400, "invalid_base64", json_body({"image_base64": "QUFBQ"}), "application/json"),
    "json-base64-padding-inside": Case(
        400, "invalid_base64", json_body({"image_base64": "QQ==QUFB"}), "application/json"
    ),
    "json-data-url-not-base64": Case(
        400, "invalid_base64", json_body({"image_base64": "data:image/jpeg,notbase64"}), "application/json"
    ),
    "json-base64-empty": Case(400, "invalid_image", json_body({"image_base64": ""}), "application/json"),
    "json-base64-of-text": Case(
        400, "invalid_image", json_body({"image_base64": b64(b"plain text")}), "application/json"
    ),
    "json-base64-of-truncated-jpeg": Case(
        400, "invalid_image", json_body({"image_base64": b64(JPEG[:100])}), "application/json"
    ),
    "json-base64-of-gif": Case(
        415, "unsupported_format", json_body({"image_base64": b64(UNSUPPORTED_SAMPLES["gif89a"])}), "application/json"
    ),
    "json-base64-of-huge-png": Case(
        413, "image_too_large", json_body({"image_base64": b64(HUGE_PNG)}), "application/json"
    ),
    "json-base64-over-cap": Case(
        413, "image_too_large", json_body({"image_base64": "A" * (MAX_IMAGE_BYTES * 4 // 3 + 100)}), "application/json"
    ),
    # --- Routes and methods ---
    "get-on-upload": Case(405, "method_not_allowed", method="GET"),
    "put-on-upload": Case(405, "method_not_allowed", JPEG, "image/jpeg", method="PUT"),
    "delete-on-upload": Case(405, "method_not_allowed", method="DELETE"),
    "post-on-health": Case(405, "method_not_allowed", JPEG, "image/jpeg", path="/health"),
    "unknown-path": Case(404, "not_found", JPEG, "image/jpeg", path="/upload"),
    "trailing-slash": Case(404, "not_found", JPEG, "image/jpeg", path=UPLOAD + "/"),
    # --- Headers that lie ---
    "content-length-over-cap": Case(413, "image_too_large", JPEG, "image/jpeg", headers={"content-length": "99999999"}),
}


def assert_error_shape(status: int, payload: dict, case: Case) -> None:
    assert 400 <= status < 500
    assert set(payload) == {"error", "request_id"}
    assert set(payload["error"]) == {"code", "message"}
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    assert (status, payload["error"]["code"]) == (case.status, case.code), payload


def test_corpus_has_at_least_fifty_cases():
    assert len(CASES) >= 50


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gets_a_4xx_json_error(api_client, name):
    case = CASES[name]
    headers = dict(case.headers)
    if case.content_type is not None:
        headers["content-type"] = case.content_type.encode("latin-1")  # bytes: httpx sends them as they are
    response = api_client.request(case.method, case.path, content=case.body, headers=headers)
    assert response.headers["content-type"] == "application/json"
    assert_error_shape(response.status_code, response.json(), case)


def test_streamed_body_over_the_cap_is_refused_without_content_length(api_client):
    def chunks():
        for _ in range(8):
            yield b"\xff" * 1_000_000

    response = api_client.post(UPLOAD, content=chunks(), headers={"content-type": "image/jpeg"})
    assert "content-length" not in response.request.headers
    assert_error_shape(response.status_code, response.json(), Case(413, "image_too_large"))


def test_an_image_exactly_at_the_cap_is_not_refused_for_size(api_client):
    at_cap = JPEG + b"\x00" * (MAX_IMAGE_BYTES - len(JPEG))  # trailing bytes after EOI are ignored by decoders
    for response in (
        api_client.post(UPLOAD, content=at_cap, headers={"content-type": "image/jpeg"}),
        api_client.post(UPLOAD, files={"file": ("f.jpg", at_cap, "image/jpeg")}),
        api_client.post(UPLOAD, json={"image_base64": b64(at_cap)}),
    ):
        assert response.status_code == 200, response.text


def test_error_answers_carry_the_request_id(api_client):
    response = api_client.post(UPLOAD, content=b"", headers={"content-type": "image/jpeg"})
    assert response.json()["request_id"] == response.headers["x-request-id"]


# --- The same through the Lambda entry point -------------------------------------------------------

LAMBDA_CASES = [
    "text-plain",
    "raw-text",
    "raw-png-100000x100000",
    "multipart-no-boundary",
    "multipart-wrong-boundary",
    "multipart-truncated-in-file",
    "multipart-field-named-image",
    "json-not-json",
    "json-base64-bad-characters",
    "json-wrong-key",
    "get-on-upload",
    "unknown-path",
]


def http_api_event(case: Case) -> dict:
    headers = {"host": "abcdef1234.execute-api.eu-west-1.amazonaws.com", "content-length": str(len(case.body))}
    if case.content_type is not None:
        headers["content-type"] = case.content_type
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": case.path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "http": {"method": case.method, "path": case.path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7"},
            "requestId": "bad-input-test",
            "stage": "$default",
        },
        "isBase64Encoded": True,
    }
    if case.body:
        event["body"] = base64.b64encode(case.body).decode("ascii")
    return event


@pytest.mark.parametrize("name", LAMBDA_CASES)
def test_bad_input_through_the_lambda_handler(api_handler, name):
    case = CASES[name]
    result = api_handler(http_api_event(case), lambda_context("ApiFunction"))
    assert result["headers"]["content-type"] == "application/json"
    assert_error_shape(result["statusCode"], json.loads(result["body"]), case)
