"""Typed errors for everything a caller can get wrong.

Each error carries a stable machine-readable ``code`` and the HTTP status an API should answer with,
so handlers map them without a lookup table of their own.
"""

from __future__ import annotations


class MeaaError(Exception):
    """Base class: a client-caused problem with a stable code and a human message."""

    code = "meaa_error"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidImage(MeaaError):
    """The bytes are not a decodable image (empty, truncated, corrupt, random)."""

    code = "invalid_image"
    http_status = 400


class InvalidVideo(MeaaError):
    """A video file OpenCV cannot open, or with no decodable frame (corrupt, truncated, unknown codec)."""

    code = "invalid_video"
    http_status = 400


class UnsupportedFormat(MeaaError):
    """A well-formed file of a kind we do not decode (GIF, TIFF, PDF, ...)."""

    code = "unsupported_format"
    http_status = 415


class ImageTooLarge(MeaaError):
    """Over the byte cap or the pixel cap (checked from the header, before decoding)."""

    code = "image_too_large"
    http_status = 413


class InvalidInput(MeaaError):
    """An argument of the wrong type or shape (e.g. crops that are not uint8 [N,H,W])."""

    code = "invalid_input"
    http_status = 422
