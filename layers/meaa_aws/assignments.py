"""Which clinician may read which subject: the assignments table (template.yaml's ``AssignmentsTable``).

A table of its own rather than items in the results table: an assignment can never collide with a result
item or appear in the ``BySubject`` index, its IAM grant (Query, PutItem, DeleteItem) covers nothing
else, and its retention is not the results' TTL.

    clinician (hash key): the clinician's ``sub``      subject (range key): a subject id
    assigned_at: ISO 8601 UTC                          assigned_by: the admin's ``sub``

Every read is one strongly consistent Query, so an assignment or a revocation applies to the very next
request (no cache: a revoked clinician must not keep reading for a cache's lifetime, and the Query costs
about a millisecond and half a read unit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key

CLINICIAN = "clinician"
SUBJECT = "subject"
ASSIGNED_AT = "assigned_at"
ASSIGNED_BY = "assigned_by"


@dataclass(frozen=True)
class Assignment:
    clinician: str
    subject: str
    assigned_at: str
    assigned_by: str

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Assignment:
        return cls(
            str(item[CLINICIAN]), str(item[SUBJECT]), str(item.get(ASSIGNED_AT, "")), str(item.get(ASSIGNED_BY, ""))
        )


@dataclass(frozen=True)
class AssignmentPage:
    clinician: str
    assignments: list[Assignment]
    last_key: dict[str, str] | None  # DynamoDB's LastEvaluatedKey: where the next page starts


class AssignmentStore:
    """The assignments table, through a boto3 ``Table``."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def is_assigned(self, clinician: str, subject: str) -> bool:
        """One Query on the exact key (consistent: a change made a moment ago counts)."""
        page = self.table.query(
            KeyConditionExpression=Key(CLINICIAN).eq(clinician) & Key(SUBJECT).eq(subject),
            ProjectionExpression="#subject",
            ExpressionAttributeNames={"#subject": SUBJECT},
            ConsistentRead=True,
            Limit=1,
        )
        return bool(page.get("Items"))

    def assign(
        self, clinician: str, subject: str, assigned_by: str, now: datetime | None = None
    ) -> tuple[Assignment, bool]:
        """Write the assignment (again: the time and admin are refreshed); True when it is new."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        assignment = Assignment(clinician, subject, moment.isoformat(timespec="milliseconds"), assigned_by)
        answer = self.table.put_item(
            Item={
                CLINICIAN: clinician,
                SUBJECT: subject,
                ASSIGNED_AT: assignment.assigned_at,
                ASSIGNED_BY: assigned_by,
            },
            ReturnValues="ALL_OLD",
        )
        return assignment, "Attributes" not in answer

    def revoke(self, clinician: str, subject: str) -> bool:
        """Delete the assignment; False when there was none."""
        answer = self.table.delete_item(Key={CLINICIAN: clinician, SUBJECT: subject}, ReturnValues="ALL_OLD")
        return "Attributes" in answer

    def subjects_of(self, clinician: str, limit: int, start_key: dict[str, str] | None = None) -> AssignmentPage:
        """One page of a clinician's subjects, in subject order (one Query), from ``start_key`` (a page's
        ``last_key``, checked by the caller to be this clinician's)."""
        query: dict[str, Any] = {
            "KeyConditionExpression": Key(CLINICIAN).eq(clinician),
            "ConsistentRead": True,
            "Limit": limit,
        }
        if start_key:
            query["ExclusiveStartKey"] = start_key
        page = self.table.query(**query)
        found = [Assignment.from_item(item) for item in page.get("Items", [])]
        return AssignmentPage(clinician, found, page.get("LastEvaluatedKey"))
