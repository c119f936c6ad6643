"""What every format's header reader shares: the header it returns and its typed complaints."""

from __future__ import annotations

from dataclasses import dataclass

from meaa.errors import InvalidImage, InvalidInput


@dataclass(frozen=True)
class ImageHeader:
    """What the header says, read without decoding. ``width``/``height`` are as stored."""

    format: str
    width: int
    height: int
    orientation: int = 1  # EXIF orientation, 1..8 (1 = as stored); JPEG only

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) after applying the orientation: the decoded image's size."""
        if self.orientation >= 5:  # 5..8 swap the axes
            return self.height, self.width
        return self.width, self.height


def as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise InvalidInput(f"image data must be bytes, not {type(data).__name__}")


def checked_size(fmt: str, width: int, height: int, orientation: int = 1) -> ImageHeader:
    if width <= 0 or height <= 0:
        raise InvalidImage(f"the {fmt.upper()} header gives an empty size {width}x{height}")
    return ImageHeader(fmt, width, height, orientation)


def truncated(fmt: str) -> InvalidImage:
    return InvalidImage(f"the {fmt.upper()} data ends before its header does (truncated?)")


def promises_more(header: ImageHeader, detail: str) -> InvalidImage:
    return InvalidImage(
        f"the {header.format.upper()} header promises {header.width}x{header.height} pixels but {detail} (truncated?)"
    )
