"""The results table, as the batch function writes it (item shapes and keys: ``meaa.store``)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from meaa.store import Attr, Kind, ObjectRef, reads_as

from .clients import error_code


class ResultsTable:
    """One DynamoDB table of results (a boto3 ``Table``)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def has_result(self, ref: ObjectRef, model_version: str) -> bool:
        """Whether the revision has a RESULT item of ``model_version`` (then it was scored by it: the RESULT is
        written last), under today's key or as a legacy item (written before results were kept per model)."""
        if "Item" in self.table.get_item(Key=ref.result_key(model_version), ConsistentRead=True):
            return True
        legacy = self.table.get_item(Key=ref.legacy_result_key, ConsistentRead=True).get("Item")
        return legacy is not None and reads_as(legacy, model_version)

    def first_created_at(self, ref: ObjectRef) -> str | None:
        """``object_created_at`` of a RESULT the revision already has (of any model version), or None.

        A re-score copies it, so the revision's results of every model version share their time and their
        subject_time in the index, whatever time the listing gives. One Query of the object's partition (a
        video's frames included: far less than scoring it).
        """
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "#revision = :revision AND #kind <> :frame",
            "ExpressionAttributeNames": {
                "#revision": Attr.REVISION.value,
                "#kind": Attr.KIND.value,
                "#created": Attr.OBJECT_CREATED_AT.value,
            },
            "ExpressionAttributeValues": {":pk": ref.partition_key, ":revision": ref.revision, ":frame": Kind.FRAME},
            "ProjectionExpression": "#created",
        }
        while True:
            page = self.table.query(**query)
            for item in page.get("Items", []):
                if item.get(Attr.OBJECT_CREATED_AT):
                    return str(item[Attr.OBJECT_CREATED_AT])
            if not page.get("LastEvaluatedKey"):
                return None
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

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
