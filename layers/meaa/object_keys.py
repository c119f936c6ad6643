"""The drop bucket's object keys, in one place for the batch function and the API.

    <incoming prefix><subject>/<session>/<file>      e.g. incoming/subject-42/2026-11-26/3f2a...-clip.mp4

- Which subject an object belongs to (``split_layout``, ``owner_of``): the batch function files its results
  under that subject, and the API lets only that subject's readers see the object.
- Which files are scored (``MEDIA_TYPES``: suffix -> the Content-Type a direct upload must declare): the
  batch function refuses the rest, the API's presigned POST policies never allow them (how large each kind
  may be is the deployed functions' setting: ``meaa_aws.s3_objects.object_byte_limit``).
- The keys of direct uploads (``upload_key``): the client's filename is untrusted, so only a sanitized
  form of it goes into the key (``safe_file_name``), after a random id.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from meaa.errors import UnsupportedFormat

IMAGE_MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
VIDEO_MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
    ".m4v": "video/x-m4v",
}
IMAGE_SUFFIXES = frozenset(IMAGE_MEDIA_TYPES)
VIDEO_SUFFIXES = frozenset(VIDEO_MEDIA_TYPES)
MEDIA_TYPES = {**IMAGE_MEDIA_TYPES, **VIDEO_MEDIA_TYPES}

MAX_SUBJECT_CHARS = 256
MAX_SESSION_CHARS = 64
MAX_FILE_NAME_CHARS = 100  # the sanitized name, suffix included; the key adds the prefix, ids and a uuid
SESSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_SESSION = re.compile(SESSION_PATTERN)
_UNSAFE_NAME_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def suffix_of(name: str) -> str:
    """The lower-case suffix of a file name (``.jpg``), or "" when it has none."""
    base = name.rsplit("/", 1)[-1].lower()
    return base[base.rfind(".") :] if "." in base else ""


def split_layout(relative: str) -> tuple[str, str] | None:
    """(subject, session) of a key relative to the incoming prefix, when it has both and a file under them."""
    parts = relative.split("/")
    if len(parts) >= 3 and parts[0] and parts[1]:
        return parts[0], parts[1]
    return None


def owner_of(key: str, incoming_prefix: str) -> str | None:
    """The subject an object key belongs to; None for keys outside the prefix or without the layout."""
    if not key.startswith(incoming_prefix):
        return None
    layout = split_layout(key[len(incoming_prefix) :])
    return layout[0] if layout else None


def is_valid_subject(subject: str) -> bool:
    """A subject id that can be one part of a key: 1 to 256 characters, no '/', no control characters,
    not '.' or '..' (a key means the same to S3 either way, but not to every tool that copies keys to paths)."""
    return (
        0 < len(subject) <= MAX_SUBJECT_CHARS
        and "/" not in subject
        and subject not in (".", "..")
        and not _CONTROL.search(subject)
    )


def is_valid_session(session: str) -> bool:
    return bool(_SESSION.match(session))


def safe_file_name(name: str) -> str:
    """The last part of an untrusted file name, in ASCII letters, digits, '.', '_' and '-', at most
    ``MAX_FILE_NAME_CHARS``, with its media suffix in lower case (the batch trigger's suffix filters are
    case-sensitive). Raises ``UnsupportedFormat`` for a suffix the batch function does not score."""
    base = re.split(r"[\\/]", name)[-1]  # a path's last part, whichever separator the phone used
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    suffix = suffix_of(base)
    if suffix not in MEDIA_TYPES:
        allowed = " ".join(sorted(MEDIA_TYPES))
        raise UnsupportedFormat(f"file type {suffix or '(none)'} is not scored; allowed: {allowed}")
    stem = _UNSAFE_NAME_RUN.sub("_", base[: len(base) - len(suffix)]).strip("._-")
    return (stem[: MAX_FILE_NAME_CHARS - len(suffix)].rstrip("._-") or "upload") + suffix


def upload_key(incoming_prefix: str, subject: str, session: str, file_name: str) -> str:
    """A fresh key for one direct upload: a random id first, so two uploads never share a key."""
    if not is_valid_subject(subject) or not is_valid_session(session):
        raise ValueError("subject and session must be checked before building a key")
    return f"{incoming_prefix}{subject}/{session}/{uuid.uuid4()}-{safe_file_name(file_name)}"
