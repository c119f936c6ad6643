"""The batch function's pure parts: S3 key parsing, DynamoDB value shaping, summaries."""

from __future__ import annotations

import importlib.util
import math
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.lambda_loader import function_spec


def _function_module(name: str) -> ModuleType:
    """functions/batch/<name>.py under a private name (sys.path and the handler's modules untouched)."""
    spec = importlib.util.spec_from_file_location(f"batch_{name}", function_spec("BatchFunction").code_dir / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


items = _function_module("items")


def _record(key: str, **object_fields) -> dict:
    return {
        "eventTime": "2026-11-26T07:00:00.000Z",
        "s3": {"bucket": {"name": "drop"}, "object": {"key": key, "size": 10, "eTag": "abc", **object_fields}},
    }


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
    obj = items.S3Object.from_record(_record(event_key), "incoming/")
    assert (obj.key, obj.subject, obj.session, obj.file_name) == (key, subject, session, file_name)
    assert obj.partition_key == f"OBJECT#drop/{key}"


def test_revision_is_the_version_id_when_there_is_one_else_the_etag() -> None:
    assert items.S3Object.from_record(_record("incoming/a/b/c.jpg", versionId="v7"), "incoming/").revision == "v7"
    assert items.S3Object.from_record(_record("incoming/a/b/c.jpg", versionId="null"), "incoming/").revision == "abc"
    assert items.S3Object.from_record(_record("incoming/a/b/c.jpg"), "incoming/").revision == "abc"


def test_extension_is_lower_case_and_frame_keys_sort_by_time() -> None:
    obj = items.S3Object.from_record(_record("incoming/a/b/CLIP.MP4"), "incoming/")
    assert obj.extension == ".mp4"
    keys = [obj.frame_sort_key(ms) for ms in (0, 500, 10_000, 3_600_000)]
    assert keys == sorted(keys) and keys[1] == "REV#abc#FRAME#0000000500"


def test_values_become_dynamodb_types() -> None:
    shaped = items.to_dynamodb(
        {"p": 0.123456, "n": 3, "flag": True, "none": None, "nan": math.nan, "np": np.float32(0.5), "list": [1.0, (2, 0.25)]}
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
        items.to_dynamodb({"bytes": object()})


def test_summary_shares_means_and_run_length_timeline() -> None:
    summary = items.VideoSummary()
    happy = {"positive": 0.8, "negative": 0.1, "neutral": 0.1, "other": 0.0}
    calm = {"positive": 0.1, "negative": 0.1, "neutral": 0.8, "other": 0.0}
    for time_ms, mood, moods in [
        (0, "positive", happy),
        (500, "positive", happy),
        (1000, None, None),
        (1500, "neutral", calm),
        (2000, "positive", happy),
    ]:
        summary.add(time_ms, mood, moods)

    attributes = summary.attributes()

    assert attributes["frames_sampled"] == 5 and attributes["frames_with_face"] == 4
    assert attributes["mood_shares"] == {"positive": 0.75, "negative": 0.0, "neutral": 0.25, "other": 0.0}
    assert attributes["mean_moods"]["positive"] == pytest.approx((0.8 * 3 + 0.1) / 4)
    assert attributes["mood"] == "positive"
    assert attributes["timeline"] == [
        {"start_ms": 0, "end_ms": 500, "mood": "positive"},
        {"start_ms": 1000, "end_ms": 1000, "mood": "none"},
        {"start_ms": 1500, "end_ms": 1500, "mood": "neutral"},
        {"start_ms": 2000, "end_ms": 2000, "mood": "positive"},
    ]


def test_summary_of_a_video_without_faces_has_no_mood() -> None:
    summary = items.VideoSummary()
    summary.add(0, None, None)
    attributes = summary.attributes()
    assert attributes["mood"] is None and sum(attributes["mood_shares"].values()) == 0


