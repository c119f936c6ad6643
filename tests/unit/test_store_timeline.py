"""``meaa.store``'s reading side (bucketing, the one Query per page) and the API's side of it in ``meaa_api.query``
(the timeline's parameters, cursors and answers).

DynamoDB is stood in for by a table object that records the Query and answers with items shaped like
the batch function's (the integration test does the same against moto's server with real items).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from meaa import store
from meaa.errors import InvalidCursor, InvalidQuery, ObjectNotFound
from meaa_api import query


class RecordingTable:
    """Answers Query with the given pages in turn and keeps every request."""

    def __init__(self, *pages: dict[str, Any]) -> None:
        self.pages = list(pages)
        self.requests: list[dict[str, Any]] = []

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs)
        return self.pages.pop(0)


MODEL = "mtcnn:aaaaaaaaaaaa+mood:bbbbbbbbbbbb"
NEW_MODEL = "mtcnn:aaaaaaaaaaaa+mood:cccccccccccc"


def result_row(key: str, created: str, model_version: str | None = MODEL, **attributes: Any) -> dict[str, Any]:
    """A RESULT row of the BySubject index as the batch function writes it (``model_version=None``: a legacy
    item written before results were kept per model version, with no model version of its own)."""
    sort_key = store.legacy_result_sort_key("e") if model_version is None else store.result_sort_key("e", model_version)
    row = {
        "pk": store.object_partition_key("drop", key),
        "sk": sort_key,
        "subject": "s-1",
        "subject_time": store.subject_time(created, key),
        "revision": "e",
        "object_created_at": created,
        **attributes,
    }
    if model_version is not None:
        row["model_version"] = model_version
    return row


def image_item(created: str, moods: list[str], subject: str = "s-1", model_version: str = MODEL) -> dict[str, Any]:
    key = f"incoming/{subject}/x/{created}.jpg"
    return result_row(
        key,
        created,
        model_version,
        kind="image",
        face_count=Decimal(len(moods)),
        mood_counts=store.mood_counts(moods),
    )


@pytest.mark.parametrize("text, minutes", [("1m", 1), ("5m", 5), ("90m", 90), ("1h", 60), ("6h", 360), ("1d", 1440)])
def test_bucket_sizes(text: str, minutes: int) -> None:
    assert query.parse_bucket(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "0m", "30s", "2d", "1w", "5", "m5", "05m", "1.5h", "25h", " 5m"])
def test_bad_bucket_sizes(text: str) -> None:
    with pytest.raises(InvalidQuery):
        query.parse_bucket(text)


def test_times_are_iso_8601_and_utc() -> None:
    assert query.parse_time("2026-11-25T08:00:00Z", "from") == datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert query.parse_time("2026-11-25T09:30:00+01:30", "from") == datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert query.parse_time("2026-11-25", "from") == datetime(2026, 11, 25, tzinfo=UTC)
    # "?from=2026-11-25T09:30:00+01:30" typed into a URL: the query decodes "+" as a space.
    assert query.parse_time("2026-11-25T09:30:00 01:30", "from") == datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert store.iso_z(datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC)) == "2026-11-25T08:00:00.123Z"
    for text in ("yesterday", "25/11/2026", "2026-13-01", "1795672800"):
        with pytest.raises(InvalidQuery):
            query.parse_time(text, "from")


def test_time_range_defaults_and_limits() -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    default = query.parse_time_range(None, None, "1h", now=now)
    assert (default.start, default.end) == (now - timedelta(days=1), now)
    with pytest.raises(InvalidQuery, match="before"):
        query.parse_time_range("2026-11-26", "2026-11-26", "1h")
    with pytest.raises(InvalidQuery, match="buckets"):
        query.parse_time_range("2026-01-01", "2026-03-01", "5m")
    assert query.parse_time_range("2026-01-01", "2026-01-08", "1m")  # a week of minutes fits


def test_cursor_round_trip_and_refusals() -> None:
    key = {
        "pk": "OBJECT#b/incoming/s-1/x/a.jpg",
        "sk": "REV#e#RESULT",
        "subject": "s-1",
        "subject_time": "2026-11-25T08:00:00.000Z#k",
    }
    required = ("pk", "sk", "subject", "subject_time")
    cursor = query.encode_cursor(key)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # URL-safe as it is
    assert query.decode_cursor(cursor, {"subject": "s-1"}, required) == key
    assert query.encode_cursor(None) is None and query.encode_cursor({}) is None

    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode()

    bad = [
        "%%%",
        b64("not json"),
        b64("[1, 2]"),
        b64(json.dumps({**key, "extra": "x"})),
        b64(json.dumps({k: v for k, v in key.items() if k != "sk"})),
        b64(json.dumps({**key, "sk": 5})),
        b64("\xff"),
        cursor + "A" * 5000,
    ]
    for cursor_text in bad:
        with pytest.raises(InvalidCursor):
            query.decode_cursor(cursor_text, {"subject": "s-1"}, required)
    with pytest.raises(InvalidCursor, match="another"):
        query.decode_cursor(cursor, {"subject": "s-10"}, required)


def test_one_query_on_the_subject_index_with_time_bounds() -> None:
    table = RecordingTable({"Items": [], "LastEvaluatedKey": None})
    time_range = query.parse_time_range("2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z", "1h")
    query.subject_moods(table, "s-1", time_range, MODEL, 50, None)
    (request,) = table.requests
    assert request["IndexName"] == "BySubject" and request["Limit"] == 50
    values = request["ExpressionAttributeValues"]
    assert values == {":subject": "s-1", ":lower": "2026-11-25T00:00:00.000Z", ":upper": "2026-11-26T00:00:00.000Z"}
    assert "BETWEEN" in request["KeyConditionExpression"] and "ExclusiveStartKey" not in request


def test_buckets_count_faces_by_mood_and_leave_out_empty_ones() -> None:
    items = [
        image_item("2026-11-25T08:05:00.000Z", ["positive", "positive", "negative"]),
        image_item("2026-11-25T08:50:00.000Z", []),
        result_row("incoming/s-1/x/k.jpg", "2026-11-25T08:55:00.000Z", None, kind="failure"),  # legacy: every model's
        # a legacy video (no mood_counts yet): 4 frames with a face, 3 positive and 1 neutral
        result_row(
            "incoming/s-1/x/v.mp4",
            "2026-11-25T10:15:00.000Z",
            MODEL,
            kind="video",
            frames_with_face=Decimal(4),
            mood_shares={
                "positive": Decimal("0.75"),
                "negative": Decimal(0),
                "neutral": Decimal("0.25"),
                "other": Decimal(0),
            },
        ),
        image_item("2026-11-25T12:00:00.000Z", ["other"]),  # == to: outside [from, to)
    ]
    last_key = {key: items[-2][key] for key in ("pk", "sk", "subject", "subject_time")}
    # The page ends inside a revision's rows: the rest of them are read before the page is answered.
    table = RecordingTable({"Items": items, "LastEvaluatedKey": last_key}, {"Items": []})
    time_range = query.parse_time_range("2026-11-25T08:00:00Z", "2026-11-25T12:00:00Z", "1h")
    answer = query.subject_moods(table, "s-1", time_range, MODEL, 500, None)

    first, second = answer["buckets"]
    assert first["start"] == "2026-11-25T08:00:00.000Z" and first["end"] == "2026-11-25T09:00:00.000Z"
    assert (first["objects"], first["failed"], first["face_count"]) == (3, 1, 3)
    assert first["mood_counts"] == {"positive": 2, "negative": 1, "neutral": 0, "other": 0}
    assert first["moods"]["positive"] == pytest.approx(2 / 3) and first["dominant_mood"] == "positive"
    assert second["start"] == "2026-11-25T10:00:00.000Z" and second["face_count"] == 4
    assert second["mood_counts"] == {"positive": 3, "negative": 0, "neutral": 1, "other": 0}
    assert answer["items_read"] == 5 and answer["bucket_seconds"] == 3600
    assert query.decode_cursor(answer["next_cursor"], {"subject": "s-1"}, tuple(last_key)) == last_key

    # The cursor goes back to DynamoDB as ExclusiveStartKey.
    follow = RecordingTable({"Items": []})
    query.subject_moods(follow, "s-1", time_range, MODEL, 500, answer["next_cursor"])
    assert follow.requests[0]["ExclusiveStartKey"] == last_key


def test_a_cursor_outside_the_range_is_refused() -> None:
    key = {"pk": "p", "sk": "s", "subject": "s-1", "subject_time": "2026-11-20T00:00:00.000Z#k"}
    time_range = query.parse_time_range("2026-11-25", "2026-11-26", "1h")
    table = RecordingTable()
    with pytest.raises(InvalidCursor):
        query.subject_moods(table, "s-1", time_range, MODEL, 10, query.encode_cursor(key))
    assert table.requests == []  # refused before DynamoDB is asked


def test_ties_go_to_the_first_mood_and_no_face_means_no_dominant_mood() -> None:
    bucket = store.Bucket(datetime(2026, 11, 25, tzinfo=UTC))
    assert bucket.to_dict(timedelta(hours=1))["dominant_mood"] is None
    bucket.add(image_item("2026-11-25T00:01:00.000Z", ["neutral", "negative"]))
    assert bucket.to_dict(timedelta(hours=1))["dominant_mood"] == "negative"


def test_object_items_query_the_model_versions_range_then_the_legacy_items_and_convert_decimals() -> None:
    item = {
        "pk": "OBJECT#drop/incoming/s-1/x/a.jpg",
        "sk": store.result_sort_key("e", MODEL),
        "model_version": MODEL,
        "face_count": Decimal(1),
        "moods": {"positive": Decimal("0.25")},
    }
    legacy = {"pk": item["pk"], "sk": "REV#d#RESULT", "kind": "failure"}
    table = RecordingTable({"Items": [item]}, {"Items": [legacy]})
    answer = query.object_results(table, "drop", "incoming/s-1/x/a.jpg", MODEL, 10, None)
    model_range, legacy_range = table.requests
    assert model_range["ExpressionAttributeValues"] == {":pk": item["pk"], ":prefix": f"MODEL#{MODEL}#"}
    assert legacy_range["ExpressionAttributeValues"][":prefix"] == "REV#" and legacy_range["Limit"] == 9
    assert "IndexName" not in model_range and "FilterExpression" in legacy_range
    assert answer["items"] == [{**item, "face_count": 1, "moods": {"positive": 0.25}}, legacy]
    assert answer["next_cursor"] is None and answer["model_version"] == MODEL
    assert isinstance(answer["items"][0]["face_count"], int)
    with pytest.raises(ObjectNotFound, match=r"(?i)^no results"):
        query.object_results(RecordingTable({"Items": []}, {"Items": []}, {"Items": []}), "drop", "a", MODEL, 10, None)
    with pytest.raises(ObjectNotFound, match="other versions: re-score"):
        others = RecordingTable({"Items": []}, {"Items": []}, {"Items": [{"pk": "p"}]})
        query.object_results(others, "drop", "a", NEW_MODEL, 10, None)
    with pytest.raises(InvalidQuery):
        query.object_results(RecordingTable(), "drop", "k" * 1025, MODEL, 10, None)
    with pytest.raises(InvalidQuery):
        query.object_results(RecordingTable(), "drop", "a", "bad#version", 10, None)


def test_an_object_page_filled_by_the_model_version_continues_with_the_legacy_items() -> None:
    pk = store.object_partition_key("drop", "a")
    rows = [{"pk": pk, "sk": store.frame_sort_key("e", MODEL, ms), "model_version": MODEL} for ms in (0, 500)]
    answer = query.object_results(RecordingTable({"Items": rows}), "drop", "a", MODEL, 2, None)
    follow = RecordingTable({"Items": [{"pk": pk, "sk": "REV#d#RESULT", "model_version": MODEL}]})
    second = query.object_results(follow, "drop", "a", MODEL, 2, answer["next_cursor"])
    (request,) = follow.requests  # straight to the legacy items, from their start
    assert request["ExpressionAttributeValues"][":prefix"] == "REV#" and "ExclusiveStartKey" not in request
    assert [item["sk"] for item in second["items"]] == ["REV#d#RESULT"] and second["next_cursor"] is None
    # A cursor of another model version's items is refused before DynamoDB is asked.
    with pytest.raises(InvalidCursor):
        other = query.encode_cursor({"pk": pk, "sk": store.frame_sort_key("e", NEW_MODEL, 0)})
        query.object_results(RecordingTable(), "drop", "a", MODEL, 2, other)


def test_the_timeline_counts_one_model_versions_results_and_says_which_objects_have_none() -> None:
    old_only = image_item("2026-11-25T08:05:00.000Z", ["negative", "negative"])
    both_old = image_item("2026-11-25T08:10:00.000Z", ["negative"])
    both_new = {**image_item("2026-11-25T08:10:00.000Z", ["positive"], model_version=NEW_MODEL)}
    both_new["subject_time"] = both_old["subject_time"]
    legacy_failure = result_row("incoming/s-1/x/f.jpg", "2026-11-25T09:30:00.000Z", None, kind="failure")
    page = {"Items": [old_only, both_old, both_new, legacy_failure]}
    time_range = query.parse_time_range("2026-11-25T08:00:00Z", "2026-11-25T10:00:00Z", "1h")

    new = query.subject_moods(RecordingTable(page), "s-1", time_range, NEW_MODEL, 500, None)
    old = query.subject_moods(RecordingTable(page), "s-1", time_range, MODEL, 500, None)

    assert new["model_version"] == NEW_MODEL and new["other_model_versions"] == [MODEL]
    eight, nine = new["buckets"]
    assert (eight["objects"], eight["objects_without_result"], eight["mood_counts"]["positive"]) == (1, 1, 1)
    assert eight["face_count"] == 1  # the object scored by the old model only is counted nowhere else
    assert (nine["objects"], nine["failed"], nine["objects_without_result"]) == (1, 1, 0)
    assert old["other_model_versions"] == [] and old["buckets"][0]["objects_without_result"] == 0
    assert old["buckets"][0]["mood_counts"]["negative"] == 3 and old["buckets"][0]["objects"] == 2


def test_a_page_never_cuts_the_rows_of_one_revision() -> None:
    first = image_item("2026-11-25T08:10:00.000Z", ["negative"])
    second = {**image_item("2026-11-25T08:10:00.000Z", ["positive"], model_version=NEW_MODEL)}
    last_key = {key: first[key] for key in ("pk", "sk", "subject", "subject_time")}
    table = RecordingTable({"Items": [first], "LastEvaluatedKey": last_key}, {"Items": [second]})
    time_range = query.parse_time_range("2026-11-25T08:00:00Z", "2026-11-25T10:00:00Z", "1h")

    answer = query.subject_moods(table, "s-1", time_range, NEW_MODEL, 1, None)

    _, rest = table.requests
    assert rest["KeyConditionExpression"].endswith("#subject_time = :tail") and "Limit" not in rest
    assert rest["ExpressionAttributeValues"][":tail"] == first["subject_time"] and rest["ExclusiveStartKey"] == last_key
    (bucket,) = answer["buckets"]
    assert (bucket["objects"], bucket["objects_without_result"], bucket["face_count"]) == (1, 0, 1)
    expected_cursor = {key: second[key] for key in ("pk", "sk", "subject", "subject_time")}
    assert query.decode_cursor(answer["next_cursor"], {"subject": "s-1"}, tuple(expected_cursor)) == expected_cursor


# --- Hostile parameters (issue 9): every problem is a 400 with a code, never a 500 ------------------------


def test_a_cursor_nested_past_the_recursion_limit_is_not_ours() -> None:
    nested = "[" * 1500 + "]" * 1500
    cursor = base64.urlsafe_b64encode(nested.encode()).decode().rstrip("=")
    assert len(cursor) < query.MAX_CURSOR_CHARS
    with pytest.raises(InvalidCursor):
        query.decode_cursor(cursor, {"subject": "s-1"}, ("pk", "sk", "subject", "subject_time"))


@pytest.mark.parametrize(
    "start, end",
    [
        (None, "9999-12-31T23:59:59-14:00"),
        ("0001-01-01T00:00:00+14:00", "2026-01-01"),
        (None, "0001-01-01"),
        ("9999-12-31T23:00:00Z", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_invalid_queries(start, end) -> None:
    with pytest.raises(InvalidQuery):
        query.parse_time_range(start, end, "1d")
