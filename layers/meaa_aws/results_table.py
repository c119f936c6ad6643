"""The results table, as the batch function writes it (item shapes: ``meaa.store``)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from meaa.store import Attr, ObjectRef

from .clients import error_code


class ResultsTable:
    """One DynamoDB table of results (a boto3 ``Table``)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def has_result(self, ref: ObjectRef) -> bool:
        """Whether the revision's RESULT item exists (then it was scored: it is written last)."""
        return "Item" in self.table.get_item(Key=ref.result_key, ConsistentRead=True)

    def put_result(self, item: dict[str, Any]) -> bool:
        """Write the RESULT item unless one exists (a concurrent duplicate delivery); True if written."""
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
            return True
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise

    def frame_writer(self) -> Any:
        """A batch writer for FRAME items; keys are deterministic, so a retry overwrites, never duplicates."""
        return self.table.batch_writer(overwrite_by_pkeys=[Attr.PK, Attr.SK])
