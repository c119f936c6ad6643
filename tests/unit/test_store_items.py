"""``meaa.store``'s writing side and the batch function's event parsing: keys, values, summaries."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from devkit.aws import BROKEN_RECORDS
from meaa import store
from meaa_batch.events import (
    RESCORE_SOURCE,
    ListedBeforeSince,
    MalformedRecord,
    SkippedRecord,
    parse_listed_object,
    parse_record,
    records_of,
)


def _record(key: str, **object_fields) -> dict:
    return {
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-26T07:00:00.000Z",
        "s3": {"bucket": {"name": "drop"}, "object": {"key": key, "size": 10, "eTag": "abc", **object_fields}},
    }


def _ref(key: str, **object_fields) -> store.ObjectRef:
    parsed = parse_record(0, _record(key, **object_fields), "incoming/")
    assert isinstance(parsed, store.ObjectRef), parsed
    return parsed


@pytest.mark.parametrize(
    ("event_key", "key", "subject", "session", "file_name"),
    [
        ("incoming/p+1/s+2/a+b.jpg", "incoming/p 1/s 2/a b.jpg", "p 1", "s 2", "a b.jpg"),
        ("incoming/p%2B1/s/%C3%A9t%C3%A9.mp4", "incoming/p+1/s/été.mp4", "p+1", "s", "été.mp4"),
        ("incoming/p/s/deeper/x.png", "incoming/p/s/deeper/x.png", "p", "s", "x.png"),
        ("incoming/x.jpg", "incoming/x.jpg", None, None, "x.jpg"),
        ("incoming/p/x.jpg", "incoming/p/x.jpg", None, None, "x.jpg"),
        ("incoming//s/x.jpg", "incoming//s/x.jpg", None, None, "x.jpg"),
    ],
)
def test_keys_are_url_decoded_and_parsed_as_subject_session_file(event_key, key, subject, session, file_name) -> None:
    obj = _ref(event_key)
    assert (obj.key, obj.subject, obj.session, obj.file_name) == (key, subject, session, file_name)
    assert obj.partition_key == f"OBJECT#drop/{key}"


def test_revision_is_the_version_id_when_there_is_one_else_the_etag() -> None:
    assert _ref("incoming/a/b/c.jpg", versionId="v7").revision == "v7"
    assert _ref("incoming/a/b/c.jpg", versionId="null").revision == "abc"
    assert _ref("incoming/a/b/c.jpg").revision == "abc"


def test_extension_is_lower_case_and_frame_keys_sort_by_time() -> None:
    obj = _ref("incoming/a/b/CLIP.MP4")
    assert obj.extension == ".mp4"
    keys = [store.frame_sort_key(obj.revision, "m:1", ms) for ms in (0, 500, 10_000, 3_600_000)]
    assert keys == sorted(keys) and keys[1] == "MODEL#m:1#REV#abc#FRAME#0000000500"


def test_values_become_dynamodb_types() -> None:
    shaped = store.to_dynamodb(
        {
            "p": 0.123456,
            "n": 3,
            "flag": True,
            "none": None,
            "nan": math.nan,
            "np": np.float32(0.5),
            "list": [1.0, (2, 0.25)],
        }
    )
    assert shaped == {
        "p": Decimal("0.1235"),
        "n": 3,
        "flag": True,
        "none": None,
        "nan": None,
        "np": Decimal("0.5"),
        "list": [Decimal("1.0"), [2, Decimal("0.25")]],
    }
    with pytest.raises(TypeError):
        store.to_dynamodb({"bytes": object()})


def _analysis(mood: str | None, moods: dict | None, faces: int = 1, reliable: bool = True) -> dict:
    face = {"box": {"w": 10, "h": 10}, "mood": mood or "neutral", "reliable": reliable}
    return {"faces": [face] * faces, "mood": mood, "moods": moods}


def test_summary_counts_shares_means_and_run_length_timeline() -> None:
    summary = store.VideoSummary(max_segments=100)
    happy = {"positive": 0.8, "negative": 0.1, "neutral": 0.1, "other": 0.0}
    calm = {"positive": 0.1, "negative": 0.1, "neutral": 0.8, "other": 0.0}
    for time_ms, analysis in [
        (0, _analysis("positive", happy)),
        (500, _analysis("positive", happy)),
        (1000, _analysis(None, None, faces=0)),
        (1500, _analysis("neutral", calm)),
        (2000, _analysis("positive", happy)),
        (2500, _analysis(None, None, reliable=False)),  # a face the quality gate does not trust
    ]:
        summary.add(time_ms, analysis)

    attributes = summary.attributes()

    assert attributes["frames_sampled"] == 6 and attributes["frames_with_face"] == 5
    assert attributes["frames_with_reliable_face"] == 4
    assert attributes["mood_counts"] == {"positive": 3, "negative": 0, "neutral": 1, "other": 0}
    assert attributes["mood_counts_all"] == {"positive": 3, "negative": 0, "neutral": 2, "other": 0}
    assert attributes["mood_shares"] == {"positive": 0.75, "negative": 0.0, "neutral": 0.25, "other": 0.0}
    assert attributes["mean_moods"]["positive"] == pytest.approx((0.8 * 3 + 0.1) / 4)
    assert attributes["mood"] == "positive"
    assert attributes["timeline"] == [
        {"start_ms": 0, "end_ms": 500, "mood": "positive"},
        {"start_ms": 1000, "end_ms": 1000, "mood": "none"},
        {"start_ms": 1500, "end_ms": 1500, "mood": "neutral"},
        {"start_ms": 2000, "end_ms": 2000, "mood": "positive"},
        {"start_ms": 2500, "end_ms": 2500, "mood": "none"},
    ]


def test_summary_keeps_at_most_max_segments_and_counts_the_rest() -> None:
    summary = store.VideoSummary(max_segments=2)
    for index, mood in enumerate(["positive", "negative", "positive", "negative"]):
        summary.add(index * 500, _analysis(mood, dict.fromkeys(("positive", "negative", "neutral", "other"), 0.25)))
    assert len(summary.attributes()["timeline"]) == 2 and summary.segments_dropped == 2
    assert summary.attributes()["mood_counts"]["negative"] == 2


def test_summary_of_a_video_without_faces_has_no_mood() -> None:
    summary = store.VideoSummary(max_segments=10)
    summary.add(0, _analysis(None, None, faces=0))
    attributes = summary.attributes()
    assert attributes["mood"] is None and sum(attributes["mood_shares"].values()) == 0


def test_long_keys_are_hashed_to_fit_the_index_and_the_full_key_is_kept() -> None:
    key = "incoming/p/s/" + "k" * 1011  # S3's longest: 1,024 bytes
    obj = _ref(key)
    context = store.ItemContext(obj, "m:1", processed_at="2026-11-26T07:00:01.000Z")
    item = store.failure_item(context, {"code": "invalid_image", "message": "X"})
    assert len(item["subject_time"].encode()) <= store.MAX_INDEX_SORT_KEY_BYTES
    assert item["subject_time"].startswith("2026-11-26T07:00:00.000Z#SHA256#") and item["key"] == key
    assert store.subject_time("t", "short") == "t#short"


def test_crowds_keep_their_largest_faces_and_count_every_face() -> None:
    faces = [{"box": {"w": size, "h": size}, "mood": "positive", "reliable": size % 2 == 0} for size in range(1, 301)]
    analysis = {
        "width": 9,
        "height": 9,
        "face_count": 300,
        "mood": "positive",
        "moods": None,
        "faces": faces,
        "model_version": "v",
    }
    attributes = store.analysis_attributes(analysis)
    assert attributes["faces_stored"] == store.MAX_STORED_FACES == len(attributes["faces"])
    assert attributes["faces"][0]["box"]["w"] == 300
    assert attributes["mood_counts_all"]["positive"] == 300 and attributes["mood_counts"]["positive"] == 150


def test_items_expire_after_the_retention_period_when_one_is_set() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 26, tzinfo=UTC)
    assert store.retention_expiry(moment, 0) is None
    assert store.retention_expiry(moment, 30) == int(moment.timestamp()) + 30 * 86400
    context = store.ItemContext(_ref("incoming/a/b/c.jpg"), "m:1", processed_at="t", expires_at=123)
    assert store.failure_item(context, {"code": "c", "message": "m"})["expires_at"] == 123


@pytest.mark.parametrize(
    "event",
    [None, [], "x", {"Records": None}, {"Records": "x"}, {"Records": [None]}, {"Records": [1, 2]}],
)
def test_malformed_events_yield_malformed_records(event) -> None:
    assert all(isinstance(record.parsed, MalformedRecord) for record in records_of(event, "incoming/"))


@pytest.mark.parametrize("broken", sorted(BROKEN_RECORDS))
def test_malformed_records_are_reported_not_raised(broken: str) -> None:
    record = _record("incoming/a/b/c.jpg")
    BROKEN_RECORDS[broken](record)
    assert isinstance(parse_record(3, record, "incoming/"), MalformedRecord)


def test_records_of_other_events_are_skipped() -> None:
    record = _record("incoming/a/b/c.jpg")
    record["eventName"] = "ObjectRemoved:Delete"
    assert isinstance(parse_record(0, record, "incoming/"), SkippedRecord)


def _listed(**fields) -> dict:
    listed = {"Key": "incoming/p 1/s/a.jpg", "Etag": '"abc"', "Size": 10, "LastModified": 1795600000, **fields}
    return {"source": RESCORE_SOURCE, "bucket": "drop", "object": listed, "since": None}


@pytest.mark.parametrize(
    "fields",
    [{}, {"Etag": None, "ETag": '"abc"', "LastModified": "2026-11-25T09:46:40+00:00"}],
    ids=["step-functions", "moto"],
)
def test_a_listed_object_names_its_revision_by_its_etag_and_keeps_its_plain_key(fields) -> None:
    parsed = parse_listed_object(_listed(**fields), "incoming/")
    assert isinstance(parsed, store.ObjectRef), parsed
    assert (parsed.key, parsed.subject, parsed.session, parsed.revision) == ("incoming/p 1/s/a.jpg", "p 1", "s", "abc")
    assert parsed.created_at == "2026-11-25T09:46:40.000Z" and parsed.size == 10


def test_a_listed_object_before_since_is_left_alone() -> None:
    item = {**_listed(), "since": "2026-11-26"}
    assert isinstance(parse_listed_object(item, "incoming/"), ListedBeforeSince)
    assert isinstance(parse_listed_object({**item, "since": "2026-11-25T09:46:40Z"}, "incoming/"), store.ObjectRef)


@pytest.mark.parametrize(
    "item",
    [
        None,
        {"source": "elsewhere", "bucket": "drop", "object": {}},
        {**_listed(), "object": "x"},
        _listed(Key=None),
        _listed(Size=True),
        _listed(Size=-1),
        _listed(LastModified="yesterday"),
        _listed(Key="incoming/" + "k" * 1100),
        {**_listed(), "since": "soon"},
        {**_listed(), "bucket": None},
    ],
)
def test_malformed_listed_objects_are_reported(item) -> None:
    assert isinstance(parse_listed_object(item, "incoming/"), MalformedRecord)
