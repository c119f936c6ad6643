"""The Lambda entry points emit CloudWatch embedded-metric-format (EMF) documents and correlated JSON logs.

Both handlers are invoked the way Lambda invokes them (template.yaml's Handler and CodeUri, through
``devkit.lambda_loader``): the API handler with the sample API Gateway events in ``events/``, the batch
handler on moto's in-process S3 and DynamoDB. An EMF document is a JSON line on stdout whose
``_aws.CloudWatchMetrics`` declares the namespace, the dimension sets and the metrics; CloudWatch Logs turns
each declared name's value in the same document into a metric. No AWS is needed and nothing is mocked but AWS.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devkit.aws import (
    EVENTS_DIR,
    all_items,
    apply_environment,
    create_drop_bucket_and_tables,
    event_for,
    face_jpeg,
    face_video_bytes,
    moto_environment,
    put_object,
)
from devkit.lambda_loader import lambda_context, load_handler
from meaa.labels import MOODS

NAMESPACE = "MEAA"


@dataclass(frozen=True)
class Metric:
    """One metric value of an EMF document, with the document's dimensions."""

    name: str
    unit: str
    values: tuple[float, ...]
    dimensions: dict[str, str]


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def emf_metrics(lines: list[dict[str, Any]]) -> list[list[Metric]]:
    """Each EMF document among ``lines`` as its metrics; checks the document is well formed on the way."""
    documents = []
    for line in lines:
        directives = (line.get("_aws") or {}).get("CloudWatchMetrics")
        if directives is None:
            continue
        assert isinstance(line["_aws"]["Timestamp"], int)
        metrics = []
        for directive in directives:
            assert directive["Namespace"] == NAMESPACE
            (dimension_names,) = directive["Dimensions"]
            dimensions = {name: line[name] for name in dimension_names}  # every dimension has its value
            for declared in directive["Metrics"]:
                raw = line[declared["Name"]]  # every declared metric has its value
                values = tuple(raw) if isinstance(raw, list) else (raw,)
                metrics.append(Metric(declared["Name"], declared["Unit"], values, dimensions))
        documents.append(metrics)
    return documents


def by_name(document: list[Metric]) -> dict[str, Metric]:
    return {metric.name: metric for metric in document}


def api_event(name: str, body: bytes | None = None) -> dict[str, Any]:
    event = json.loads((EVENTS_DIR / name).read_text())
    if body is not None:
        event = copy.deepcopy(event)
        event["body"] = base64.b64encode(body).decode()
        event["headers"]["content-length"] = str(len(body))
    return event


# ---------------------------------------------------------------- API


def test_api_entry_point_emits_one_emf_document_per_scored_photo(api_handler, capsys) -> None:
    capsys.readouterr()
    response = api_handler(api_event("api_upload_multipart.json"), lambda_context("ApiFunction"))

    assert response["statusCode"] == 200
    answer = json.loads(response["body"])
    (document,) = emf_metrics(json_lines(capsys.readouterr().out))
    metrics = by_name(document)
    assert all(metric.dimensions == {"service": "meaa-api"} for metric in document)
    assert metrics["RequestLatency"].unit == "Milliseconds" and metrics["RequestLatency"].values[0] > 0
    assert metrics["FacesFound"].values == (answer["face_count"],) == (1,)
    reliable = [face for face in answer["faces"] if face.get("reliable", True)]
    assert metrics["ReliableFaces"].values == (len(reliable),)
    for mood in MOODS:
        expected = sum(1 for face in reliable if face["mood"] == mood)
        assert metrics.get(f"Mood_{mood}", Metric("", "", (0,), {})).values == (expected,)
    for stage, milliseconds in answer["timings_ms"].items():
        latency = metrics[f"StageLatency_{stage}"]
        assert latency.unit == "Milliseconds" and latency.values == (milliseconds,)
    assert {"decode", "detect", "classify", "total"} <= set(answer["timings_ms"])


def test_api_error_counts_an_errors_metric_with_its_code(api_handler, capsys) -> None:
    capsys.readouterr()
    event = api_event("api_upload_raw_jpeg.json", body=b"not an image at all")
    response = api_handler(event, lambda_context("ApiFunction"))

    assert response["statusCode"] == 400 and json.loads(response["body"])["error"]["code"] == "invalid_image"
    documents = [by_name(document) for document in emf_metrics(json_lines(capsys.readouterr().out))]
    (request,) = [document for document in documents if "RequestLatency" in document]
    assert "FacesFound" not in request, "no analysis, no face metrics"
    (error,) = [document for document in documents if "Errors" in document]
    assert error["Errors"].values == (1,)
    assert error["Errors"].dimensions == {"service": "meaa-api", "error_code": "invalid_image"}


def test_api_logs_carry_api_gateways_request_id_as_correlation_id(api_handler, capsys) -> None:
    capsys.readouterr()
    event = api_event("api_upload_raw_jpeg.json")
    api_handler(event, lambda_context("ApiFunction"))

    logs = [line for line in json_lines(capsys.readouterr().out) if "_aws" not in line]
    (request,) = [line for line in logs if line.get("message") == "request"]
    gateway_id = event["requestContext"]["requestId"]
    assert request["correlation_id"] == gateway_id == request["request_id"]
    assert request["service"] == "meaa-api" and request["function_request_id"]


# ---------------------------------------------------------------- batch


def test_batch_entry_point_emits_emf_for_scored_and_failed_objects(aws, capsys, tmp_path: Path) -> None:
    s3, _ = aws
    handler = load_handler("BatchFunction")
    objects = [
        put_object(s3, "incoming/subject-1/s1/face.jpg", face_jpeg()),
        put_object(s3, "incoming/subject-1/s1/clip.mp4", face_video_bytes(tmp_path)),
        put_object(s3, "incoming/subject-1/s1/broken.jpg", b"not an image"),
    ]
    capsys.readouterr()

    answer = handler(event_for(objects), lambda_context("BatchFunction"))

    outcomes = {outcome["key"].rsplit("/", 1)[1]: outcome for outcome in answer["outcomes"]}
    assert [outcome["status"] for outcome in outcomes.values()] == ["scored", "scored", "failed"]
    documents = [by_name(document) for document in emf_metrics(json_lines(capsys.readouterr().out))]
    (invocation,) = [document for document in documents if "ObjectsScored" in document]  # one flush per invocation
    assert all(metric.dimensions == {"service": "meaa-batch"} for metric in invocation.values())
    assert sum(invocation["ObjectsScored"].values) == 2
    assert invocation["ObjectsFailed"].values == (1,)
    assert invocation["VideoFramesSampled"].values == (outcomes["clip.mp4"]["frames_sampled"],)
    # the photo's faces, then the video's main faces (one per sampled frame with a face)
    assert invocation["FacesFound"].values == (outcomes["face.jpg"]["face_count"], 3) == (1, 3)
    assert invocation["StageLatency_total"].unit == "Milliseconds"
    (error,) = [document for document in documents if "Errors" in document]
    assert error["Errors"].dimensions == {"service": "meaa-batch", "error_code": "invalid_image"}


def test_batch_logs_carry_each_records_s3_request_id_as_correlation_id(aws, capsys) -> None:
    s3, _ = aws
    handler = load_handler("BatchFunction")
    event = event_for(
        [
            put_object(s3, "incoming/subject-1/s1/a.jpg", b"not an image"),
            put_object(s3, "incoming/subject-1/s1/b.jpg", b"not an image either"),
        ]
    )
    for index, record in enumerate(event["Records"]):
        record["responseElements"]["x-amz-request-id"] = f"S3REQUEST{index}"
    capsys.readouterr()

    handler(event, lambda_context("BatchFunction"))

    logs = [line for line in json_lines(capsys.readouterr().out) if line.get("message") == "record processed"]
    assert [(line["key"].rsplit("/", 1)[1], line["correlation_id"]) for line in logs] == [
        ("a.jpg", "S3REQUEST0"),
        ("b.jpg", "S3REQUEST1"),
    ]


# ---------------------------------------------------------------- retention


@pytest.mark.parametrize("retention_days", [0, 30])
def test_batch_sets_the_ttl_attribute_on_every_item_when_retention_is_set(
    monkeypatch: pytest.MonkeyPatch, retention_days: int, tmp_path: Path
) -> None:
    apply_environment(monkeypatch, moto_environment(MEAA_RESULTS_RETENTION_DAYS=str(retention_days)))
    with mock_aws():
        s3 = boto3.client("s3")
        create_drop_bucket_and_tables(s3, boto3.client("dynamodb"))
        handler = load_handler("BatchFunction")  # a cold start reads the setting
        objects = [
            put_object(s3, "incoming/subject-1/s1/face.jpg", face_jpeg()),
            put_object(s3, "incoming/subject-1/s1/clip.mp4", face_video_bytes(tmp_path)),
            put_object(s3, "incoming/subject-1/s1/broken.jpg", b"not an image"),
        ]
        before = int(time.time())
        handler(event_for(objects), lambda_context("BatchFunction"))
        after = int(time.time())
        items = all_items(boto3.resource("dynamodb"))

    assert {item["kind"] for item in items} == {"image", "frame", "video", "failure"}
    if retention_days == 0:
        assert not [item for item in items if "expires_at" in item], "0 keeps results: no TTL attribute"
        return
    for item in items:
        expiry = int(item["expires_at"])  # a Number, as DynamoDB's TTL requires (epoch seconds)
        assert before + retention_days * 86400 <= expiry <= after + retention_days * 86400
