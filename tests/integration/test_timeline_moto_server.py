"""The timeline read back through the API from results the batch handler wrote, all against moto's server.

A day of real frames for two subjects goes through the batch handler (``devkit.timeline_day``); the
API (imported the way Lambda imports it, served locally with ``MEAA_LOCAL=1``) answers the timeline.
Checked: per-bucket counts against the RESULT items themselves, shares summing to 1, no item of one
subject in the other's timeline, paging with a small page size, cursors that are refused.
"""

from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from devkit.aws import apply_environment, moto_environment, moto_server
from devkit.lambda_loader import lambda_context, load_function_module
from devkit.timeline_day import (
    DAY,
    OTHER_SUBJECT,
    OTHER_SUBJECT_MINUTE,
    SUBJECT,
    SUBJECT_MINUTE,
    VIDEO_TIME,
    Uploaded,
    faces_in,
    result_item,
    write_day,
)

MOODS = ("positive", "negative", "neutral", "other")
DAY_RANGE = {"from": "2026-11-25T00:00:00Z", "to": "2026-11-26T00:00:00Z"}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Uploaded]]:
    with pytest.MonkeyPatch.context() as patch, moto_server() as endpoint:
        apply_environment(patch, moto_environment(endpoint, MEAA_LOCAL="1"))
        yield write_day(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def api_module(day: list[Uploaded]):
    return load_function_module("ApiFunction")


@pytest.fixture(scope="module")
def client(api_module) -> Iterator[TestClient]:
    with TestClient(api_module.app, raise_server_exceptions=False) as test_client:
        yield test_client


def _moods(client: TestClient, subject: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/subjects/{quote(subject)}/moods", params={**DAY_RANGE, **params})
    assert response.status_code == 200, response.text
    return response.json()


def _all_pages(client: TestClient, subject: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every page, buckets cut by a page boundary added back together; and the number of pages."""
    merged: dict[str, dict[str, Any]] = {}
    cursor, pages = None, 0
    while True:
        answer = _moods(client, subject, **params, **({"cursor": cursor} if cursor else {}))
        pages += 1
        for part in answer["buckets"]:
            total = merged.setdefault(part["start"], {"objects": 0, "failed": 0, "mood_counts": Counter()})
            total["objects"] += part["objects"]
            total["failed"] += part["failed"]
            total["mood_counts"].update(part["mood_counts"])
        cursor = answer["next_cursor"]
        if cursor is None:
            return [{"start": start, **merged[start]} for start in sorted(merged)], pages


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_hourly_buckets_add_up_to_the_subjects_results(client: TestClient, day: list[Uploaded]) -> None:
    answer = _moods(client, SUBJECT, bucket="1h")
    mine = [entry for entry in day if entry.subject == SUBJECT]
    expected_faces: dict[datetime, int] = defaultdict(int)
    expected_objects: Counter = Counter()
    for entry in mine:
        hour = entry.created_at.replace(minute=0, second=0, microsecond=0)
        expected_faces[hour] += faces_in(result_item(entry.key))
        expected_objects[hour] += 1

    assert answer["next_cursor"] is None and answer["bucket_seconds"] == 3600
    buckets = {_parse(bucket["start"]): bucket for bucket in answer["buckets"]}
    assert set(buckets) == set(expected_objects)
    for start, bucket in buckets.items():
        assert _parse(bucket["end"]) - start == timedelta(hours=1)
        assert bucket["objects"] == expected_objects[start]
        assert bucket["face_count"] == expected_faces[start], start
        assert sum(bucket["mood_counts"].values()) == bucket["face_count"]
        if bucket["face_count"]:
            assert sum(bucket["moods"].values()) == pytest.approx(1.0)
            assert bucket["dominant_mood"] == max(MOODS, key=lambda mood: bucket["mood_counts"][mood])
        else:
            assert bucket["dominant_mood"] is None and sum(bucket["moods"].values()) == 0
    assert sum(b["objects"] for b in answer["buckets"]) == len(mine) == 25
    assert sum(b["face_count"] for b in answer["buckets"]) == sum(expected_faces.values())
    # The group photo's six faces and the video's frames both count; the no-face photo counts none.
    assert max(b["face_count"] for b in answer["buckets"]) > 1
    assert any(b["objects"] == 1 and b["face_count"] == 0 for b in answer["buckets"])
    video_hour = buckets[VIDEO_TIME.replace(minute=0)]
    assert video_hour["objects"] == 2 and video_hour["face_count"] == expected_faces[VIDEO_TIME.replace(minute=0)]


def test_one_subject_never_sees_the_others_items(client: TestClient, day: list[Uploaded]) -> None:
    for subject, minute in ((SUBJECT, SUBJECT_MINUTE), (OTHER_SUBJECT, OTHER_SUBJECT_MINUTE)):
        answer = _moods(client, subject, bucket="5m")
        expected = [entry for entry in day if entry.subject == subject]
        assert sum(bucket["objects"] for bucket in answer["buckets"]) == len(expected)
        # Each subject's objects were made at its own minute of the hour (the failure 5 minutes later).
        assert {_parse(bucket["start"]).minute for bucket in answer["buckets"]} <= {minute, minute + 5}
    other = _moods(client, OTHER_SUBJECT, bucket="1d")
    (whole_day,) = other["buckets"]
    assert whole_day["objects"] == 9 and whole_day["failed"] == 1
    assert _moods(client, "subject", bucket="1d")["buckets"] == []  # a prefix of both ids matches neither


def test_small_pages_give_the_same_timeline(client: TestClient, day: list[Uploaded]) -> None:
    whole, pages_whole = _all_pages(client, SUBJECT, bucket="3h")
    paged, pages_small = _all_pages(client, SUBJECT, bucket="3h", limit=4)
    assert pages_whole == 1 and pages_small >= 25 // 4
    assert paged == whole
    first = _moods(client, SUBJECT, bucket="3h", limit=4)
    assert first["items_read"] == 4 and first["next_cursor"]


def test_from_and_to_select_the_time_range(client: TestClient, day: list[Uploaded]) -> None:
    morning = _moods(
        client, SUBJECT, bucket="1h", **{"from": "2026-11-25T06:00:00+00:00", "to": "2026-11-25T09:10:00Z"}
    )
    # 09:10 itself is excluded (to is exclusive); the bucket grid starts at `from`.
    assert [bucket["start"] for bucket in morning["buckets"]] == [f"2026-11-25T{h:02d}:00:00.000Z" for h in (6, 7, 8)]
    shifted = _moods(client, SUBJECT, bucket="1h", **{"from": "2026-11-25T06:30:00Z", "to": "2026-11-25T08:30:00Z"})
    assert [bucket["start"] for bucket in shifted["buckets"]] == [
        "2026-11-25T06:30:00.000Z",
        "2026-11-25T07:30:00.000Z",
    ]
    assert [b["objects"] for b in shifted["buckets"]] == [1, 1]


@pytest.mark.parametrize(
    "params, code",
    [
        ({"bucket": "30s"}, "invalid_query"),
        ({"bucket": "2d"}, "invalid_query"),
        ({"bucket": "5 minutes"}, "invalid_query"),
        ({"from": "yesterday"}, "invalid_query"),
        ({"from": "2026-11-26T00:00:00Z", "to": "2026-11-25T00:00:00Z"}, "invalid_query"),
        ({"from": "2020-01-01", "to": "2026-01-01", "bucket": "1m"}, "invalid_query"),
        ({"limit": "0"}, "invalid_query"),
        ({"limit": "lots"}, "invalid_input"),
        ({"cursor": "not a cursor!"}, "invalid_cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"[1, 2]").decode()}, "invalid_cursor"),
    ],
)
def test_bad_parameters_are_400_json_errors(
    client: TestClient, day: list[Uploaded], params: dict[str, str], code: str
) -> None:
    response = client.get(f"/subjects/{SUBJECT}/moods", params={**DAY_RANGE, "bucket": "1h", **params})
    assert response.status_code == (422 if code == "invalid_input" else 400), response.text
    assert response.json()["error"]["code"] == code


def test_a_cursor_only_continues_its_own_subject(client: TestClient, day: list[Uploaded]) -> None:
    others = _moods(client, OTHER_SUBJECT, bucket="1h", limit=2)["next_cursor"]
    response = client.get(f"/subjects/{SUBJECT}/moods", params={**DAY_RANGE, "bucket": "1h", "cursor": others})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cursor"


def test_object_items_paged_and_unknown_object_is_404(client: TestClient, day: list[Uploaded]) -> None:
    video = next(entry for entry in day if entry.key.endswith(".mp4"))
    items: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"/objects/{quote(video.key)}", params=params)
        assert response.status_code == 200, response.text
        answer = response.json()
        pages += 1
        assert answer["key"] == video.key and len(answer["items"]) <= 3
        items.extend(answer["items"])
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    kinds = Counter(item["kind"] for item in items)
    assert kinds == {"frame": 6, "video": 1} and pages >= 3
    assert {item["subject"] for item in items} == {SUBJECT}
    summary = next(item for item in items if item["kind"] == "video")
    assert summary["frames_with_face"] == faces_in(result_item(video.key))

    missing = client.get(f"/objects/incoming/{SUBJECT}/ward a/never.jpg")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "object_not_found"
    image = next(entry for entry in day if entry.subject == OTHER_SUBJECT)
    wrong_cursor = client.get(
        f"/objects/{quote(image.key)}", params={"cursor": cursor or _cursor_of(client, video.key)}
    )
    assert wrong_cursor.status_code == 400 and wrong_cursor.json()["error"]["code"] == "invalid_cursor"


def _cursor_of(client: TestClient, key: str) -> str:
    return client.get(f"/objects/{quote(key)}", params={"limit": 1}).json()["next_cursor"]


def test_lambda_entry_point_answers_the_timeline(api_module, day: list[Uploaded]) -> None:
    """The Mangum handler, given an API Gateway HTTP API event for the route, answers like the app."""
    query = f"from={DAY_RANGE['from']}&to={DAY_RANGE['to']}&bucket=1d"
    path = f"/subjects/{OTHER_SUBJECT}/moods"
    event = {
        "version": "2.0",
        "routeKey": "GET /subjects/{subject}/moods",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(part.split("=", 1) for part in query.split("&")),
        "headers": {"host": "abcdef1234.execute-api.eu-west-1.amazonaws.com", "authorization": "Bearer test"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "test",
            },
            "requestId": "timeline-request",
            "routeKey": "GET /subjects/{subject}/moods",
            "stage": "$default",
            "time": "26/Nov/2026:06:00:00 +0000",
            "timeEpoch": 1795672800000,
        },
        "pathParameters": {"subject": OTHER_SUBJECT},
        "isBase64Encoded": False,
    }
    response = api_module.handler(event, lambda_context("ApiFunction"))
    assert response["statusCode"] == 200, response["body"]
    (bucket,) = json.loads(response["body"])["buckets"]
    assert bucket["start"] == DAY.strftime("%Y-%m-%dT%H:%M:%S.000Z") and bucket["objects"] == 9
