"""The S3 -> DynamoDB batch scorer, invoked like Lambda (template.yaml's BatchFunction) on moto.

S3 and DynamoDB are moto's in-process mocks (``mock_aws``); the table is created from the template's
ResultsTable definition; the models are the real ones from the layer.
"""

from __future__ import annotations

import copy
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from devkit.aws import (
    BROKEN_RECORDS,
    BUCKET,
    TABLE,
    all_items,
    event_for,
    face_jpeg,
    face_video_bytes,
    no_face_jpeg,
    put_object,
    throttle_reads,
)
from devkit.lambda_loader import lambda_context, load_handler
from meaa import store
from meaa.config import Settings
from meaa.labels import MOODS
from meaa.pipeline import model_version_of

SUBJECT_DIR = "incoming/patient 007/2026-11-26 morning"


@pytest.fixture
def handler():
    return load_handler("BatchFunction")


def invoke(handler, event: dict[str, Any]) -> dict[str, Any]:
    return handler(event, lambda_context("BatchFunction"))


def result_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if item["sk"].endswith("#RESULT")]


def test_image_gets_one_result_item_with_faces_moods_and_provenance(aws, handler) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/selfie (1).jpg", face_jpeg())

    answer = invoke(handler, event_for([entry]))

    assert answer["outcomes"][0]["status"] == "scored"
    items = all_items(dynamodb)
    assert len(items) == 1
    item = items[0]
    assert item["pk"] == f"OBJECT#{BUCKET}/{SUBJECT_DIR}/selfie (1).jpg"
    assert item["model_version"] == model_version_of(Settings.from_env())
    assert item["sk"] == f"MODEL#{item['model_version']}#REV#{entry['etag']}#RESULT"
    assert item["kind"] == "image"
    assert (item["subject"], item["session"]) == ("patient 007", "2026-11-26 morning")
    assert item["key"] == entry["key"] and item["etag"] == entry["etag"] and item["bucket"] == BUCKET
    assert item["face_count"] == 1 and len(item["faces"]) == 1
    assert item["mood"] in MOODS
    assert isinstance(item["moods"]["positive"], Decimal)
    assert abs(sum(item["moods"].values()) - 1) < Decimal("0.001")
    assert set(item["faces"][0]) >= {"box", "score", "mood", "moods", "emotions"}
    assert item["model_version"] and item["processed_at"]


def test_replayed_image_event_writes_nothing_new(aws, handler) -> None:
    s3, dynamodb = aws
    event = event_for([put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())])

    invoke(handler, event)
    before = all_items(dynamodb)
    answer = invoke(handler, event)

    assert answer["outcomes"][0]["status"] == "duplicate"
    assert all_items(dynamodb) == before  # same items, same processed_at: nothing rewritten


def test_overwritten_object_gets_results_of_its_own_revision(aws, handler) -> None:
    s3, dynamodb = aws
    first = put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())
    invoke(handler, event_for([first]))
    second = put_object(s3, f"{SUBJECT_DIR}/a.jpg", no_face_jpeg())

    # The first event arriving late, after the overwrite, must not score the new bytes as the old revision.
    late = invoke(handler, event_for([first]))
    invoke(handler, event_for([second]))

    assert late["outcomes"][0]["status"] == "duplicate"
    by_revision = {item["revision"]: item for item in all_items(dynamodb)}
    assert set(by_revision) == {first["etag"], second["etag"]}
    assert by_revision[first["etag"]]["face_count"] == 1
    assert by_revision[second["etag"]]["face_count"] == 0
    assert by_revision[second["etag"]]["mood"] is None


def test_event_for_a_replaced_object_is_skipped_as_superseded(aws, handler) -> None:
    s3, dynamodb = aws
    old = put_object(s3, f"{SUBJECT_DIR}/b.jpg", face_jpeg())
    put_object(s3, f"{SUBJECT_DIR}/b.jpg", no_face_jpeg())

    answer = invoke(handler, event_for([old]))

    assert answer["outcomes"][0]["status"] == "superseded"
    assert all_items(dynamodb) == []


def test_video_gets_frame_items_and_a_summary_and_replay_adds_none(aws, handler, tmp_path: Path) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/clip été.mp4", face_video_bytes(tmp_path))
    event = event_for([entry], template_event="s3_put_video.json")

    answer = invoke(handler, event)
    first = all_items(dynamodb)
    replay = invoke(handler, event)

    assert answer["outcomes"][0]["status"] == "scored"
    assert replay["outcomes"][0]["status"] == "duplicate"
    assert all_items(dynamodb) == first
    frames = sorted((item for item in first if item["kind"] == "frame"), key=lambda item: item["frame_ms"])
    (summary,) = result_items(first)
    # 3 s at 10 fps sampled at 2 fps: t = 0, 500, ..., 2500 ms.
    assert [frame["frame_ms"] for frame in frames] == [0, 500, 1000, 1500, 2000, 2500]
    assert all(
        frame["sk"] == store.frame_sort_key(entry["etag"], summary["model_version"], int(frame["frame_ms"]))
        for frame in frames
    )
    assert [frame["face_count"] for frame in frames] == [1, 1, 1, 0, 0, 0]
    assert summary["kind"] == "video"
    assert summary["frames_sampled"] == 6 and summary["frames_with_face"] == 3
    assert summary["duration_ms"] == 3000 and summary["source_fps"] == 10
    assert sum(summary["mood_shares"].values()) == 1
    assert summary["mood"] in MOODS
    timeline = summary["timeline"]
    assert timeline[0]["start_ms"] == 0 and timeline[-1] == {"start_ms": 1500, "end_ms": 2500, "mood": "none"}
    assert summary["truncated"] is False
    assert "subject_time" in summary and all("subject_time" not in frame for frame in frames)


def test_bad_objects_get_failure_items_and_good_records_still_score(aws, handler, tmp_path: Path) -> None:
    s3, dynamodb = aws
    good = put_object(s3, f"{SUBJECT_DIR}/good.jpg", face_jpeg())
    not_image = put_object(s3, f"{SUBJECT_DIR}/notes.jpg", b"these are not the pixels you are looking for")
    truncated = put_object(s3, f"{SUBJECT_DIR}/cut.png", face_jpeg()[:300])
    empty = put_object(s3, f"{SUBJECT_DIR}/empty.jpeg", b"")
    corrupt_video = put_object(s3, f"{SUBJECT_DIR}/broken.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(4000))
    half_video = face_video_bytes(tmp_path)
    cut_video = put_object(s3, f"{SUBJECT_DIR}/cut.mov", half_video[: len(half_video) // 3])
    gif = put_object(s3, f"{SUBJECT_DIR}/anim.gif", b"GIF89a" + bytes(100))
    event = event_for([not_image, truncated, empty, corrupt_video, cut_video, gif, good])

    answer = invoke(handler, event)

    statuses = {outcome["key"].rsplit("/", 1)[1]: outcome["status"] for outcome in answer["outcomes"]}
    assert statuses["good.jpg"] == "scored"
    items = {item["key"].rsplit("/", 1)[1]: item for item in result_items(all_items(dynamodb))}
    assert len(items) == 7, "every record leaves a RESULT item: nothing is lost"
    codes = {name: item["error"]["code"] for name, item in items.items() if item["kind"] == "failure"}
    assert codes == {
        "notes.jpg": "invalid_image",
        "cut.png": "invalid_image",
        "empty.jpeg": "invalid_image",
        "broken.mp4": "invalid_video",
        "cut.mov": "invalid_video",
        "anim.gif": "unsupported_format",
    }
    assert items["good.jpg"]["face_count"] == 1
    assert all(item["error"]["message"] for item in items.values() if item["kind"] == "failure")


def test_object_over_the_size_cap_is_refused_before_reading(aws, handler, monkeypatch: pytest.MonkeyPatch) -> None:
    s3, dynamodb = aws
    monkeypatch.setenv("MEAA_MAX_OBJECT_BYTES", "1000")
    entry = put_object(s3, f"{SUBJECT_DIR}/big.jpg", face_jpeg())

    invoke(load_handler("BatchFunction"), event_for([entry]))  # a new container reads the new setting

    (item,) = all_items(dynamodb)
    assert item["kind"] == "failure" and item["error"]["code"] == "image_too_large"


def test_deleted_object_gets_a_not_found_failure(aws, handler) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/gone.jpg", face_jpeg())
    s3.delete_object(Bucket=BUCKET, Key=entry["key"])

    invoke(handler, event_for([entry]))

    (item,) = all_items(dynamodb)
    assert item["error"]["code"] == "object_not_found"


def test_subject_index_lists_one_row_per_object_over_time(aws, handler, tmp_path: Path) -> None:
    s3, dynamodb = aws
    image = put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())
    image["event_time"] = "2026-11-26T07:00:00.000Z"
    clip = put_object(s3, f"{SUBJECT_DIR}/b.mp4", face_video_bytes(tmp_path))
    clip["event_time"] = "2026-11-26T08:00:00.000Z"
    other = put_object(s3, "incoming/patient 008/s1/c.jpg", face_jpeg())
    invoke(handler, event_for([clip, image, other]))

    rows = dynamodb.Table(TABLE).query(IndexName="BySubject", KeyConditionExpression=Key("subject").eq("patient 007"))

    assert [row["key"] for row in rows["Items"]] == [image["key"], clip["key"]]
    assert [row["kind"] for row in rows["Items"]] == ["image", "video"]


def test_key_outside_the_incoming_layout_is_scored_without_subject(aws, handler) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, "incoming/loose.jpg", face_jpeg())

    invoke(handler, event_for([entry]))

    (item,) = all_items(dynamodb)
    assert item["kind"] == "image" and "subject" not in item and "subject_time" not in item


def test_infrastructure_error_raises_so_lambda_retries(aws, handler, monkeypatch: pytest.MonkeyPatch) -> None:
    s3, _ = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())
    monkeypatch.setenv("MEAA_TABLE_NAME", "no-such-table")

    with pytest.raises(Exception) as raised:
        invoke(load_handler("BatchFunction"), event_for([entry]))

    assert "ResourceNotFoundException" in str(raised.value)


def test_logs_are_json_and_never_contain_object_bytes(aws, handler, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    s3, _ = aws
    body = b"plain text pretending to be a jpeg, with a marker XYZZY-SECRET"
    entry = put_object(s3, f"{SUBJECT_DIR}/fake.jpg", body)

    invoke(handler, event_for([entry]))

    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines, "the handler logs one line per record"
    records = [json.loads(line) for line in lines]
    assert any(record.get("status") == "failed" and record.get("error_code") == "invalid_image" for record in records)
    assert "XYZZY" not in "\n".join(lines)


def test_event_without_etag_names_the_revision_from_the_object(aws, handler) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/no-etag.jpg", face_jpeg())
    event = event_for([entry])
    del event["Records"][0]["s3"]["object"]["eTag"]

    invoke(handler, event)
    replay = invoke(handler, event)

    (item,) = all_items(dynamodb)
    assert item["revision"] == entry["etag"]
    assert item["sk"] == store.result_sort_key(entry["etag"], item["model_version"])
    assert replay["outcomes"][0]["status"] == "duplicate"


# --- Hostile and broken events (issue 9): one bad record never sinks the others ------------------------


def _good_record(s3) -> dict[str, Any]:
    return event_for([put_object(s3, f"{SUBJECT_DIR}/good.jpg", face_jpeg())])["Records"][0]


@pytest.mark.parametrize(
    "event",
    [None, [], "Records", {}, {"Records": None}, {"Records": "x"}, {"Records": [None]}, {"Records": [1, 2]}],
    ids=["null", "list", "string", "empty", "records-null", "records-string", "records-[null]", "records-ints"],
)
def test_malformed_events_are_logged_and_skipped(aws, handler, event) -> None:
    answer = invoke(handler, event)
    assert answer == {"records": 0, "outcomes": []}


@pytest.mark.parametrize("broken", sorted(BROKEN_RECORDS))
def test_a_bad_record_beside_a_good_one_loses_nothing(aws, handler, broken: str) -> None:
    s3, dynamodb = aws
    good = _good_record(s3)
    bad = copy.deepcopy(good)
    BROKEN_RECORDS[broken](bad)

    answer = invoke(handler, {"Records": [good, bad]})

    assert [outcome["status"] for outcome in answer["outcomes"]] == ["scored"]
    assert len(result_items(all_items(dynamodb))) == 1


def test_made_up_version_id_gets_a_failure_item_not_a_retry(aws, handler) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())
    entry["version_id"] = "3sL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"  # the bucket is not versioned

    answer = invoke(handler, event_for([entry]))

    assert answer["outcomes"][0]["status"] == "failed"
    (item,) = all_items(dynamodb)
    assert item["error"]["code"] in ("object_unreadable", "object_not_found")


def test_a_key_too_long_for_the_index_is_stored_under_a_hash(aws, handler) -> None:
    s3, dynamodb = aws
    key = f"{SUBJECT_DIR}/" + "x" * (1020 - len(SUBJECT_DIR) - 5) + ".jpg"
    assert 1000 < len(key.encode()) <= 1024
    entry = put_object(s3, key, face_jpeg())

    answer = invoke(handler, event_for([entry]))

    assert answer["outcomes"][0]["status"] == "scored"
    (item,) = all_items(dynamodb)
    assert item["key"] == key and "SHA256#" in item["subject_time"]
    assert len(item["subject_time"].encode()) <= 1024


def test_a_second_delivery_during_the_first_does_not_score_again(aws, handler, monkeypatch) -> None:
    """S3 delivers at least once: the duplicate finds the first delivery's in-progress claim and stops."""
    s3, dynamodb = aws
    event = event_for([put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())])
    estimator = sys.modules[handler.__module__].SCORER.estimator
    analyze = estimator.analyze
    nested: list[dict[str, Any]] = []

    def analyze_while_a_duplicate_arrives(data):
        nested.append(invoke(handler, event))
        return analyze(data)

    monkeypatch.setattr(estimator, "analyze", analyze_while_a_duplicate_arrives)
    first = invoke(handler, event)

    assert nested[0]["outcomes"][0]["status"] == "in_progress_elsewhere"
    assert first["outcomes"][0]["status"] == "scored"
    assert len(all_items(dynamodb)) == 1


def test_an_object_that_crashes_the_scorer_gets_a_failure_item(aws, handler, monkeypatch) -> None:
    s3, dynamodb = aws
    estimator = sys.modules[handler.__module__].SCORER.estimator

    def crash(data):
        raise RuntimeError("a decoder bug the bytes provoked")

    monkeypatch.setattr(estimator, "analyze", crash)
    answer = invoke(handler, event_for([put_object(s3, f"{SUBJECT_DIR}/poison.jpg", face_jpeg())]))

    assert answer["outcomes"][0]["status"] == "failed"
    (item,) = all_items(dynamodb)
    assert item["error"]["code"] == "internal_error" and "decoder" not in item["error"]["message"]


def test_a_transient_error_raises_after_the_other_records_are_done(aws, handler, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    s3, dynamodb = aws
    throttled = put_object(s3, f"{SUBJECT_DIR}/throttled.jpg", face_jpeg())
    fine = put_object(s3, f"{SUBJECT_DIR}/fine.jpg", face_jpeg())
    objects = sys.modules[handler.__module__].SCORER.objects
    read = objects.read
    throttle_reads(monkeypatch, objects, "throttled.jpg")
    with pytest.raises(ClientError):
        invoke(handler, event_for([throttled, fine]))

    (item,) = result_items(all_items(dynamodb))
    assert item["key"].endswith("fine.jpg") and item["kind"] == "image"
    monkeypatch.setattr(objects, "read", read)
    retry = invoke(handler, event_for([throttled, fine]))  # Lambda's retry: the claim was released
    assert [outcome["status"] for outcome in retry["outcomes"]] == ["scored", "duplicate"]


# --- Results per model version (issue 19): side by side; a replay with the same version writes nothing ---------


def _legacy_result(entry: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    """A RESULT item as the batch function wrote it before results were kept per model version."""
    created = "2026-11-01T08:00:00.000Z"
    ref = store.ObjectRef.from_key(BUCKET, entry["key"], "incoming/", etag=entry["etag"], created_at=created)
    return {
        **ref.legacy_result_key,
        "kind": "image",
        "bucket": BUCKET,
        "key": entry["key"],
        "revision": entry["etag"],
        "subject": ref.subject,
        "session": ref.session,
        "object_created_at": ref.created_at,
        "subject_time": store.subject_time(ref.created_at, entry["key"]),
        **attributes,
    }


def test_a_new_model_scores_the_same_revision_again_beside_the_first(aws, handler, monkeypatch) -> None:
    s3, dynamodb = aws
    event = event_for([put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())])
    first = invoke(handler, event)
    monkeypatch.setenv("MEAA_MOOD_MODEL", "emotion")
    new_handler = load_handler("BatchFunction")  # the next cold start runs the new model

    second = invoke(new_handler, event)
    replay = invoke(new_handler, event)

    assert [answer["outcomes"][0]["status"] for answer in (first, second, replay)] == ["scored", "scored", "duplicate"]
    old_item, new_item = sorted(result_items(all_items(dynamodb)), key=lambda item: item["processed_at"])
    assert old_item["model_version"] == first["outcomes"][0]["model_version"] != new_item["model_version"]
    assert "emotion:" in new_item["model_version"] and old_item["revision"] == new_item["revision"]
    assert new_item["subject_time"] == old_item["subject_time"]


def test_a_legacy_result_of_the_same_model_counts_as_scored(aws, handler) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())
    dynamodb.Table(TABLE).put_item(Item=_legacy_result(entry, model_version=model_version_of(Settings.from_env())))
    before = all_items(dynamodb)

    answer = invoke(handler, event_for([entry]))

    assert answer["outcomes"][0]["status"] == "duplicate" and all_items(dynamodb) == before


def test_a_legacy_failure_which_no_model_wrote_counts_for_every_model(aws, handler) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())
    failure = _legacy_result(entry, kind="failure", error={"code": "invalid_image", "message": "x"})
    dynamodb.Table(TABLE).put_item(Item=failure)

    answer = invoke(handler, event_for([entry]))

    assert answer["outcomes"][0]["status"] == "duplicate" and len(all_items(dynamodb)) == 1


def test_a_legacy_result_of_another_model_gets_the_new_result_at_its_first_time(aws, handler) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())
    legacy = _legacy_result(entry, model_version="mtcnn:000000000000+older:000000000000")
    dynamodb.Table(TABLE).put_item(Item=legacy)

    answer = invoke(handler, event_for([{**entry, "event_time": "2026-11-30T09:00:00.000Z"}]))

    assert answer["outcomes"][0]["status"] == "scored"
    (new,) = [item for item in all_items(dynamodb) if item["sk"].startswith("MODEL#")]
    assert new["object_created_at"] == legacy["object_created_at"] and new["subject_time"] == legacy["subject_time"]


def test_a_listed_object_is_scored_through_the_same_entry_and_a_malformed_item_raises(aws, handler) -> None:
    s3, dynamodb = aws
    entry = put_object(s3, f"{SUBJECT_DIR}/a.jpg", face_jpeg())
    listed = {"Key": entry["key"], "Etag": f'"{entry["etag"]}"', "Size": entry["size"], "LastModified": 1795600000}
    item = {"source": "meaa.rescore", "bucket": BUCKET, "object": listed, "since": None}

    scored = invoke(handler, item)
    again = invoke(handler, item)

    assert (scored["status"], again["status"]) == ("scored", "duplicate") and scored["key"] == entry["key"]
    (result,) = result_items(all_items(dynamodb))
    assert result["object_created_at"] == "2026-11-25T09:46:40.000Z"  # never scored: the listing's time
    with pytest.raises(ValueError, match=r"object\.Key"):
        invoke(handler, {**item, "object": {**listed, "Key": None}})
