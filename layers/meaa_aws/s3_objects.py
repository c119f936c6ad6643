"""Reading uploaded objects from S3, pinned to the revision an event names.

Reads use the event's ``VersionId``, else ``If-Match: <etag>``, so a late event for an overwritten object
raises ``Superseded`` instead of scoring newer bytes under the old revision's name.
"""

from __future__ import annotations

import dataclasses
from typing import IO, Any

from botocore.exceptions import ClientError

from meaa.config import Settings
from meaa.errors import ImageTooLarge, MeaaError, ObjectNotFound, ObjectUnreadable
from meaa.object_keys import IMAGE_SUFFIXES
from meaa.store import ObjectRef

from .clients import error_code, is_transient

_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
_PRECONDITION_FAILED = frozenset({"412", "PreconditionFailed"})


def object_byte_limit(suffix: str, settings: Settings) -> int:
    """The largest object of this kind the batch function reads (images also within the decoder's byte cap);
    the API's upload tickets allow no more."""
    return settings.max_batch_image_bytes if suffix in IMAGE_SUFFIXES else settings.batch.max_object_bytes


class Superseded(Exception):
    """The object was replaced after its event was sent; the newer object has an event of its own."""


class ObjectSource:
    """The drop bucket's objects, through one S3 client."""

    def __init__(self, s3_client: Any) -> None:
        self.s3 = s3_client

    def with_revision(self, ref: ObjectRef) -> ObjectRef | None:
        """Every ObjectCreated event carries an eTag; a hand-made one may not: name the revision from S3.
        None when the object cannot be read (gone, or not ours to read)."""
        try:
            head = self.s3.head_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as error:
            if is_transient(error):
                raise
            return None
        version_id = head.get("VersionId")
        return dataclasses.replace(
            ref, etag=head["ETag"].strip('"'), version_id=None if version_id in (None, "null") else version_id
        )

    def check_size(self, ref: ObjectRef, max_bytes: int, empty: type[MeaaError]) -> None:
        """HEAD the revision; refuse it before reading when it is over ``max_bytes`` or empty (``empty``: the
        error an empty object of its kind gets, ``InvalidImage`` or ``InvalidVideo``)."""
        size = int(self._call("head_object", ref)["ContentLength"])
        if size > max_bytes:
            raise ImageTooLarge(f"object is {size} bytes, over the cap of {max_bytes}")
        if size == 0:
            raise empty("object is empty")

    def read(self, ref: ObjectRef) -> bytes:
        return self._call("get_object", ref)["Body"].read()

    def download(self, ref: ObjectRef, file: IO[bytes]) -> None:
        for chunk in self._call("get_object", ref)["Body"].iter_chunks(chunk_size=1 << 20):
            file.write(chunk)
        file.flush()

    def _call(self, operation: str, ref: ObjectRef) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            args["VersionId"] = ref.version_id
        elif ref.etag:
            args["IfMatch"] = f'"{ref.etag}"'
        try:
            return getattr(self.s3, operation)(**args)
        except ClientError as error:
            code = error_code(error)
            if code in _PRECONDITION_FAILED:
                raise Superseded(ref.key) from error
            if is_transient(error):
                raise
            raise _client_problem(code) from error


def _client_problem(code: str) -> MeaaError:
    """S3's 4xx about the client's object, as the error its failure item records."""
    if code in _MISSING:
        return ObjectNotFound("object no longer exists")
    return ObjectUnreadable(f"S3 refused to read the object ({code or 'client error'})")
