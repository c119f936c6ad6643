"""Turn the three accepted request bodies into image bytes, or raise a typed client error.

The body is parsed here rather than with FastAPI's ``File``/``Form`` parameters because Starlette's form
parser accepts truncated multipart bodies, answers broken ones with its own error shape and cannot tell
"missing field" from "broken body"; one strict parser gives every caller the same error shape and a 4xx
for every body a client can get wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Literal

from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from meaa.errors import (
    ImageTooLarge,
    InvalidBase64,
    InvalidImage,
    InvalidInput,
    InvalidJson,
    MalformedMultipart,
    MissingField,
    UnsupportedMediaType,
)

# python-multipart logs a warning for every parse error it then raises; the error reaches the request's
# own JSON log line as its code, so its unstructured duplicate is silenced.
logging.getLogger("python_multipart.multipart").setLevel(logging.ERROR)

# Room for the multipart envelope, a data-URL prefix, JSON punctuation and base64 line breaks.
BODY_OVERHEAD_BYTES = 64 * 1024


def max_body_bytes(max_image_bytes: int) -> int:
    """Largest request body that can still hold an image of ``max_image_bytes`` (base64 in JSON)."""
    base64_chars = 4 * ((max_image_bytes + 2) // 3)
    return base64_chars + base64_chars // 76 * 2 + BODY_OVERHEAD_BYTES


UPLOAD_FIELD = "file"
JSON_FIELD = "image_base64"
# Content types of a raw image body; the image format itself is sniffed from the bytes by meaa.
RAW_IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/pjpeg",
        "image/png",
        "image/webp",
        "image/bmp",
        "image/x-ms-bmp",
        "application/octet-stream",
    }
)
UploadStyle = Literal["multipart", "raw", "json"]
# What reading an upload can raise (the route documents these, and the decoder's errors, from here).
PARSE_ERRORS = (
    InvalidImage,
    MalformedMultipart,
    InvalidJson,
    InvalidBase64,
    ImageTooLarge,
    UnsupportedMediaType,
    MissingField,
    InvalidInput,
)


@dataclass(frozen=True)
class Upload:
    """The image bytes of one request and how they were sent."""

    image: bytes
    style: UploadStyle


def upload_style(content_type: str | None) -> UploadStyle:
    """Which parser a Content-Type header selects; 415 for anything else."""
    media_type = parse_options_header(content_type or "")[0].decode("latin-1")
    if media_type == "multipart/form-data":
        return "multipart"
    if media_type in RAW_IMAGE_TYPES:
        return "raw"
    if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
        return "json"
    shown = media_type or "none"
    raise UnsupportedMediaType(
        f"Content-Type {shown!r} is not accepted: send multipart/form-data with a {UPLOAD_FIELD!r} field, "
        f"a raw image (image/jpeg, image/png, image/webp, image/bmp, application/octet-stream), "
        f"or application/json with {JSON_FIELD!r}"
    )


def parse_upload(content_type: str | None, body: bytes, *, max_image_bytes: int) -> Upload:
    """Extract the image bytes from a request body of any accepted style; checks the size cap."""
    style = upload_style(content_type)
    if style == "multipart":
        image = _image_from_multipart(content_type or "", body, max_image_bytes)
    elif style == "json":
        image = _image_from_json(body, max_image_bytes)
    else:
        image = body
    _check_size(len(image), max_image_bytes)
    if not image:
        raise InvalidImage("The image is empty (0 bytes)")
    return Upload(image=image, style=style)


def _check_size(size: int, max_image_bytes: int) -> None:
    if size > max_image_bytes:
        raise ImageTooLarge(f"The image is {size} bytes; the limit is {max_image_bytes} bytes")


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class _PartCollector:
    """python-multipart's callbacks: each part's headers and name, and the bytes of the upload field only
    (within the size cap as they arrive; other fields are ignored, and not kept)."""

    def __init__(self, max_image_bytes: int) -> None:
        self.max_image_bytes = max_image_bytes
        self.parts: list[_Part] = []
        self._header_field: list[bytes] = []
        self._header_value: list[bytes] = []

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
        }

    def on_part_begin(self) -> None:
        self.parts.append(_Part())

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field.append(data[start:end])

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value.append(data[start:end])

    def on_header_end(self) -> None:
        name = b"".join(self._header_field).decode("latin-1").strip().lower()
        self.parts[-1].headers[name] = b"".join(self._header_value).decode("latin-1").strip()
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        part = self.parts[-1]
        disposition, options = parse_options_header(part.headers.get("content-disposition"))
        if disposition == b"form-data" and b"name" in options:
            part.name = options[b"name"].decode("latin-1")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        if part.name != UPLOAD_FIELD:
            return
        part.size += end - start
        _check_size(part.size, self.max_image_bytes)
        part.chunks.append(data[start:end])


def _image_from_multipart(content_type: str, body: bytes, max_image_bytes: int) -> bytes:
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise MalformedMultipart("multipart/form-data without a boundary parameter in Content-Type")
    if not body:
        raise MalformedMultipart("Empty multipart/form-data body")
    parts = _multipart_parts(boundary, _without_preamble(body, boundary), max_image_bytes)
    file_parts = [part for part in parts if part.name == UPLOAD_FIELD]
    if not file_parts:
        raise MissingField(f"multipart/form-data body without a {UPLOAD_FIELD!r} field")
    if len(file_parts) > 1:
        raise InvalidInput(f"Expected one {UPLOAD_FIELD!r} field, got {len(file_parts)}")
    return b"".join(file_parts[0].chunks)


def _without_preamble(body: bytes, boundary: bytes) -> bytes:
    """RFC 2046 allows a preamble (text for non-MIME readers) before the first delimiter, which must then
    follow a CRLF; python-multipart expects the body to start with the delimiter, so skip the preamble."""
    delimiter = b"--" + boundary
    if not body.startswith(delimiter):
        first = body.find(b"\r\n" + delimiter)
        if first >= 0:
            return body[first + 2 :]
    return body


def _multipart_parts(boundary: bytes, body: bytes, max_image_bytes: int) -> list[_Part]:
    collector = _PartCollector(max_image_bytes)
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, FormParserError) as error:
        raise MalformedMultipart(f"Malformed multipart/form-data body: {error}") from None
    # python-multipart does not check that the closing boundary arrived; a truncated upload must not
    # be scored as if it were complete.
    if parser.state != MultipartState.END:
        raise MalformedMultipart(
            "Malformed multipart/form-data body: the closing boundary is missing (truncated body or a "
            "boundary that does not match the Content-Type header)"
        )
    return collector.parts


_DATA_URL = re.compile(r"^data:(?P<media_type>[^,;]*)(?P<params>(;[^,;]*)*),", re.IGNORECASE)
_BASE64_WHITESPACE = re.compile(r"[\s]+")
_STANDARD_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def _image_from_json(body: bytes, max_image_bytes: int) -> bytes:
    if not body:
        raise InvalidJson("Empty JSON body")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidJson(f"The body is not valid JSON: {type(error).__name__}") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"Expected a JSON object with {JSON_FIELD!r}, got a JSON {type(document).__name__}")
    if JSON_FIELD not in document:
        raise MissingField(f"JSON object without {JSON_FIELD!r}")
    encoded = document[JSON_FIELD]
    if not isinstance(encoded, str):
        raise InvalidInput(f"{JSON_FIELD!r} must be a string of base64, got {type(encoded).__name__}")
    return decode_base64_image(encoded, max_image_bytes=max_image_bytes)


def decode_base64_image(encoded: str, *, max_image_bytes: int) -> bytes:
    """Decode base64 as phones send it: optional data-URL prefix, line breaks, URL-safe alphabet, no padding."""
    data_url = _DATA_URL.match(encoded)
    if data_url:
        if "base64" not in data_url.group("params").lower().split(";"):
            raise InvalidBase64("A data URL must be base64-encoded (data:image/jpeg;base64,...)")
        encoded = encoded[data_url.end() :]
    compact = _BASE64_WHITESPACE.sub("", encoded)
    if len(compact) * 3 // 4 > max_image_bytes + 2:  # early, before decoding; exact check after
        _check_size(len(compact) * 3 // 4, max_image_bytes)
    compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    if not _STANDARD_BASE64.match(compact):
        raise InvalidBase64(f"{JSON_FIELD!r} holds characters outside the base64 alphabet")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64(f"{JSON_FIELD!r} is not valid base64 (wrong length or padding)") from None
