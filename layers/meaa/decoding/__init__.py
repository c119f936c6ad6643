"""Safe image decoding: sniff the format, check everything its headers promise against the caps
(``DecodeSettings``), then decode with OpenCV within the memory budget. Only JPEG, PNG, WebP and BMP reach
OpenCV. What is checked and why: README, "Input images: formats and limits"; one module per job: ``sniff``,
``jpeg``, ``png``, ``webp``, ``bmp`` (header parsers), ``exif``, ``budget`` (caps and memory model),
``opencv`` (the decode and the conversions to BGR), ``image`` (``EncodedImage``, ``decode_image``).
"""

from .headers import ImageHeader
from .image import DecodedImage, EncodedImage, decode_image, read_image_size
from .opencv import REDUCTIONS
from .sniff import SUPPORTED_FORMATS, read_image_header

__all__ = [
    "REDUCTIONS",
    "SUPPORTED_FORMATS",
    "DecodedImage",
    "EncodedImage",
    "ImageHeader",
    "decode_image",
    "read_image_header",
    "read_image_size",
]
