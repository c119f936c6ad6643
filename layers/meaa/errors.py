"""Every error a client can cause, in one registry: its stable ``code``, its HTTP status and what it means.

Each ``MeaaError`` subclass declares ``code`` and ``status`` in its class line and says in its docstring
when it happens; ``ERRORS`` maps codes to classes. The API answers ``{"error": {"code", "message"}}`` with
the class's status, the batch function stores ``{"code", "message"}`` in a failure item, the CLI prints
them, and the OpenAPI error list and the README's error table are generated from ``ERRORS``
(``error_table()``), so a new error is declared once, here.
"""

from __future__ import annotations

from typing import ClassVar

ERRORS: dict[str, type[MeaaError]] = {}


class MeaaError(Exception):
    """Base class: a client-caused problem with a stable code and a human message."""

    code: ClassVar[str] = "meaa_error"
    http_status: ClassVar[int] = 400

    def __init_subclass__(cls, *, code: str, status: int, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if code in ERRORS:
            raise TypeError(f"error code {code!r} is declared twice ({ERRORS[code].__name__}, {cls.__name__})")
        cls.code, cls.http_status = code, status
        ERRORS[code] = cls

    def __init__(self, message: str) -> None:
        # One style for every message, whoever raised it: a sentence starting with a capital letter.
        message = message[:1].upper() + message[1:]
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def summary(cls) -> str:
        """The docstring's first line: when this error happens."""
        return (cls.__doc__ or "").strip().splitlines()[0]


# ---------------------------------------------------------------- images and videos (meaa core)


class InvalidImage(MeaaError, code="invalid_image", status=400):
    """Empty, truncated or corrupt image data, not an image at all, or a header promising data the file lacks."""


class InvalidVideo(MeaaError, code="invalid_video", status=400):
    """A video that cannot be opened or has no decodable frame (corrupt, truncated, unknown codec)."""


class UnsupportedFormat(MeaaError, code="unsupported_format", status=415):
    """The bytes are GIF, TIFF, HEIC/AVIF, PDF, animated WebP, arithmetic JPEG, WebM...: a kind not decoded."""


class ImageTooLarge(MeaaError, code="image_too_large", status=413):
    """Over the byte, pixel, decode-memory, JPEG-scan or video-frame cap (checked before decoding) or upload limit."""


class InvalidInput(MeaaError, code="invalid_input", status=422):
    """JSON that is not an object, `image_base64` not a string, two `file` parts, a bad query type."""


# ---------------------------------------------------------------- the upload route (meaa_api)


class MalformedMultipart(MeaaError, code="malformed_multipart", status=400):
    """No or empty boundary, boundary mismatch, truncated body, broken part headers."""


class InvalidJson(MeaaError, code="invalid_json", status=400):
    """An empty body, not JSON, not UTF-8/16/32, or nested too deeply."""


class InvalidBase64(MeaaError, code="invalid_base64", status=400):
    """Characters outside base64, wrong length or padding, a data URL without `;base64`."""


class UnsupportedMediaType(MeaaError, code="unsupported_media_type", status=415):
    """Content-Type is none of multipart/form-data, the raw image types, or application/json."""


class MissingField(MeaaError, code="missing_field", status=422):
    """No `file` part, or no `image_base64` key."""


# ---------------------------------------------------------------- the results routes (meaa_api)


class InvalidQuery(MeaaError, code="invalid_query", status=400):
    """A results-route parameter that cannot be used (from/to/bucket/limit/subject/key)."""


class InvalidCursor(MeaaError, code="invalid_cursor", status=400):
    """A cursor this API did not return for this query (corrupt, edited, another subject's)."""


class ObjectNotFound(MeaaError, code="object_not_found", status=404):
    """No results for that object (or, in the batch function, the object no longer exists)."""


class ObjectUnreadable(MeaaError, code="object_unreadable", status=422):
    """S3 refused to read the uploaded object (access denied, a version id that does not exist, ...)."""


class TimelineUnavailable(MeaaError, code="timeline_unavailable", status=503):
    """No results table is configured (e.g. ``make serve`` without ``MEAA_TABLE_NAME``)."""


# ---------------------------------------------------------------- access (meaa_api: the JWT authorizer's claims)


class Unauthenticated(MeaaError, code="unauthenticated", status=401):
    """No verified JWT claims reached the function, or a claim the access model needs is missing or malformed."""


class Forbidden(MeaaError, code="forbidden", status=403):
    """The caller's role does not reach that subject, object key or route (decided before any data is read)."""


class AssignmentNotFound(MeaaError, code="assignment_not_found", status=404):
    """`DELETE` of a clinician-subject assignment that does not exist."""


class NotConfigured(MeaaError, code="not_configured", status=503):
    """A bucket or table this route needs is not configured (``MEAA_DROP_BUCKET``, ``MEAA_ASSIGNMENTS_TABLE``)."""


# ---------------------------------------------------------------- HTTP protocol (meaa_api)


class NotFound(MeaaError, code="not_found", status=404):
    """Unknown path (exact paths only, no trailing-slash redirect)."""


class MethodNotAllowed(MeaaError, code="method_not_allowed", status=405):
    """E.g. `GET /upload-meaa-image` (with an `Allow` header)."""


class InternalError(MeaaError, code="internal_error", status=500):
    """The service's fault, never the client's; details go only to the log."""


def error_for_status(status: int) -> type[MeaaError] | None:
    """The registered error a bare HTTP status (a framework's 404/405/413/415) is reported as."""
    by_status = {
        401: Unauthenticated,
        403: Forbidden,
        404: NotFound,
        405: MethodNotAllowed,
        413: ImageTooLarge,
        415: UnsupportedMediaType,
    }
    return by_status.get(status)


def error_table() -> str:
    """The README's error table (a test checks that README holds exactly this)."""
    rows = ["| code | HTTP status | when |", "| --- | --- | --- |"]
    rows += [f"| `{code}` | {cls.http_status} | {cls.summary()} |" for code, cls in ERRORS.items()]
    return "\n".join(rows)
