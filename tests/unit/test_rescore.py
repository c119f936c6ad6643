"""Re-scoring the archive: template.yaml's RescoreStateMachine (its ASL file, substitutions resolved) executed by
moto's Step Functions, each listed object handed to the real batch handler (``devkit.statemachine``); then the
results read back through the API imported the way Lambda imports it.

moto runs the Distributed Map over the S3 listing with the Task's Retry and writes the ResultWriter's manifest;
it does not enforce ToleratedFailurePercentage (counted failures, the run succeeds): the test proves a failure
within the limit is tolerated and counted, not that AWS fails a run over it.
"""

from __future__ import annotations

import io
import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from devkit.aws import (
    BUCKET,
    all_items,
    apply_environment,
    create_drop_bucket_and_tables,
    event_for,
    face_jpeg,
    moto_environment,
    no_face_jpeg,
    put_object,
    throttle_reads,
)
from devkit.lambda_loader import lambda_context, load_function_module, load_handler, load_template
from devkit.statemachine import EXECUTE, rescore_machine
from meaa.config import Settings
from meaa.pipeline import model_version_of
from meaa_batch import rescore

SUBJECT = "patient 007"
PREFIX = f"incoming/{SUBJECT}/"
CREATED = "2026-11-25T08:10:00.000Z"  # the S3 events' time: the objects' first scoring
DAY = {"from": "2026-11-25T00:00:00Z", "to": "2026-11-26T00:00:00Z", "bucket": "1d"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """moto with Step Functions executing definitions; the drop bucket and both tables."""
    apply_environment(monkeypatch, moto_environment(MEAA_LOCAL="1"))
    with mock_aws(config=EXECUTE):
        s3 = boto3.client("s3")
        create_drop_bucket_and_tables(s3, boto3.client("dynamodb"))
        yield s3, boto3.resource("dynamodb")


def results(dynamodb: Any) -> list[dict[str, Any]]:
    return [item for item in all_items(dynamodb) if item["sk"].endswith("#RESULT")]


def upload(s3: Any, names: list[str], prefix: str = PREFIX) -> list[dict[str, Any]]:
    bodies = {"face": face_jpeg(), "none": no_face_jpeg()}
    return [put_object(s3, f"{prefix}ward a/{name}", bodies["none" if "coffee" in name else "face"]) for name in names]


def score_by_events(entries: list[dict[str, Any]]) -> None:
    """The objects' first scoring, by their S3 events (the default model)."""
    handler = load_handler("BatchFunction")
    for entry in entries:
        outcome = handler(event_for([{**entry, "event_time": CREATED}]), lambda_context("BatchFunction"))
        assert outcome["outcomes"][0]["status"] == "scored"


def test_the_listing_under_the_prefix_reaches_the_scorer_one_object_each(aws, monkeypatch) -> None:
    s3, dynamodb = aws
    listed = upload(s3, ["a.jpg", "coffee.jpg", "b.png"])
    upload(s3, ["not-this-subject.jpg"], prefix="incoming/patient 008/")
    put_object(s3, "rescore-reports/old/manifest.json", b"{}")

    with rescore_machine(monkeypatch) as machine:
        run = machine.run(PREFIX)

    assert run.execution["status"] == "SUCCEEDED"
    parameters = load_template()["Parameters"]
    assert run.map_run["maxConcurrency"] == parameters["RescoreMaxConcurrency"]["Default"]
    assert run.map_run["toleratedFailurePercentage"] == parameters["RescoreToleratedFailurePercentage"]["Default"]
    assert run.map_run["itemCounts"]["succeeded"] == run.map_run["itemCounts"]["total"] == 3
    # Each invocation is one listed object: the ItemSelector's shape, the listing's key, size and ETag.
    by_key = {event["object"]["Key"]: event for event in run.invocations}
    assert set(by_key) == {entry["key"] for entry in listed} and len(run.invocations) == 3
    for entry in listed:
        event = by_key[entry["key"]]
        assert (event["source"], event["bucket"], event["since"]) == ("meaa.rescore", BUCKET, None)
        assert event["object"]["Size"] == entry["size"] and entry["etag"] in event["object"].get("ETag", "")
    assert Counter(answer["status"] for answer in run.answers) == {"scored": 3}
    assert {item["key"] for item in results(dynamodb)} == {entry["key"] for entry in listed}
    # The report: the ResultWriter's manifest under the report prefix, named by the map run.
    report = run.output["map_run"]["ResultWriterDetails"]
    assert report["Bucket"] == BUCKET and report["Key"].startswith("rescore-reports/")
    assert s3.get_object(Bucket=BUCKET, Key=report["Key"])["ContentLength"] > 0


def test_a_second_run_with_the_same_model_writes_nothing_new(aws, monkeypatch) -> None:
    s3, dynamodb = aws
    score_by_events(upload(s3, ["a.jpg", "b.jpg"]))
    first = all_items(dynamodb)

    with rescore_machine(monkeypatch) as machine:
        again = machine.run(PREFIX)
        once_more = machine.run(PREFIX)

    assert again.execution["status"] == once_more.execution["status"] == "SUCCEEDED"
    assert [answer["status"] for answer in again.answers + once_more.answers] == ["duplicate"] * 4
    assert all_items(dynamodb) == first  # same items, same processed_at: nothing rewritten


def test_a_failure_within_the_tolerated_percentage_is_retried_counted_and_the_rest_scored(aws, monkeypatch) -> None:
    s3, dynamodb = aws
    upload(s3, ["a.jpg", "b.jpg", "c.jpg", "throttled.jpg"])

    with rescore_machine(monkeypatch, RescoreToleratedFailurePercentage=50) as machine:
        throttle_reads(monkeypatch, sys.modules["meaa_batch.handler"].SCORER.objects, "throttled.jpg")
        run = machine.run(PREFIX)

    assert run.execution["status"] == "SUCCEEDED" and run.map_run["toleratedFailurePercentage"] == 50
    counts = run.map_run["itemCounts"]
    assert (counts["succeeded"], counts["failed"], counts["total"]) == (3, 1, 4)
    calls = zip(run.invocations, run.answers, strict=True)
    throttled = [answer for event, answer in calls if "throttled" in event["object"]["Key"]]
    assert [answer.get("errorType") for answer in throttled] == ["ClientError"] * 3  # the Task's Retry: 2 more
    assert sorted(item["key"].rsplit("/", 1)[-1] for item in results(dynamodb)) == ["a.jpg", "b.jpg", "c.jpg"]


def test_since_leaves_older_objects_alone(aws, monkeypatch) -> None:
    s3, dynamodb = aws
    upload(s3, ["a.jpg"])

    with rescore_machine(monkeypatch) as machine:
        run = machine.run(PREFIX, since="2999-01-01")

    assert [answer["status"] for answer in run.answers] == ["before_since"] and results(dynamodb) == []


def _timeline(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get(f"/subjects/{quote(SUBJECT)}/moods", params={**DAY, **params})
    assert response.status_code == 200, response.text
    return response.json()


def _every_page(client: TestClient, version: str) -> tuple[int, int, dict[str, int]]:
    """Objects, objects without a result and mood counts of the day, read one index row a page."""
    objects, unscored, counts, cursor, pages = 0, 0, Counter(), None, 0
    while True:
        answer = _timeline(client, model_version=version, limit=1, **({"cursor": cursor} if cursor else {}))
        pages += 1
        for bucket in answer["buckets"]:
            objects += bucket["objects"]
            unscored += bucket["objects_without_result"]
            counts.update(bucket["mood_counts"])
        cursor = answer["next_cursor"]
        if cursor is None:
            assert pages >= 3, pages
            return objects, unscored, dict(counts)


def test_a_rescore_with_a_new_model_keeps_both_versions_and_the_timeline_shows_the_current_one(
    aws, monkeypatch
) -> None:
    s3, dynamodb = aws
    entries = upload(s3, ["a.jpg", "b.jpg", "coffee.jpg"])
    score_by_events(entries)
    old = model_version_of(Settings.from_env())
    monkeypatch.setenv("MEAA_MOOD_MODEL", "emotion")  # the new model ships: both functions now run it
    new = model_version_of(Settings.from_env())
    assert new != old

    with TestClient(load_function_module("ApiFunction").app) as client:
        before = _timeline(client)
        with rescore_machine(monkeypatch) as machine:
            run = machine.run(PREFIX)
        after = _timeline(client)
        previous = _timeline(client, model_version=old)
        paged = {version: _every_page(client, version) for version in (new, old)}
        image = client.get(f"/objects/{quote(entries[0]['key'])}").json()
        image_before = client.get(f"/objects/{quote(entries[0]['key'])}", params={"model_version": old}).json()

    assert run.execution["status"] == "SUCCEEDED" and [a["status"] for a in run.answers] == ["scored"] * 3
    # Both versions' results, side by side; the re-score kept the first scoring's time (one subject_time).
    by_object: dict[str, dict[str, dict[str, Any]]] = {}
    for item in results(dynamodb):
        by_object.setdefault(item["key"], {})[item["model_version"]] = item
    assert all(set(versions) == {old, new} for versions in by_object.values()) and len(by_object) == 3
    for versions in by_object.values():
        assert versions[new]["object_created_at"] == versions[old]["object_created_at"] == CREATED
        assert versions[new]["subject_time"] == versions[old]["subject_time"]
    # Before the re-score, the current (new) model's timeline says the objects have no result of it yet.
    (bucket,) = before["buckets"]
    assert before["model_version"] == new and before["other_model_versions"] == [old]
    assert (bucket["objects"], bucket["objects_without_result"], bucket["face_count"]) == (0, 3, 0)
    # After it: the new model's results by default, the old ones when asked for; never mixed.
    assert after["model_version"] == new and after["other_model_versions"] == []
    assert previous["model_version"] == old and previous["other_model_versions"] == []
    for answer, version in ((after, new), (previous, old)):
        (bucket,) = answer["buckets"]
        assert (bucket["objects"], bucket["objects_without_result"]) == (3, 0)
        expected = Counter()
        for versions in by_object.values():
            expected.update({mood: int(count) for mood, count in versions[version]["mood_counts"].items()})
        assert bucket["mood_counts"] == dict(expected) and bucket["face_count"] == 2
    # One row a page: DynamoDB's pages end inside a revision's two rows; the reader finishes each revision.
    for answer, version in ((after, new), (previous, old)):
        (bucket,) = answer["buckets"]
        assert paged[version] == (bucket["objects"], bucket["objects_without_result"], bucket["mood_counts"])
    assert image["model_version"] == new and {item["model_version"] for item in image["items"]} == {new}
    assert image_before["model_version"] == old and {item["model_version"] for item in image_before["items"]} == {old}


# ---------------------------------------------------------------- the operators' command


def rescore_cli(*argv: str) -> tuple[int, dict[str, Any] | None, str]:
    out, err = io.StringIO(), io.StringIO()
    status = rescore.main(list(argv), out, err)
    return status, (json.loads(out.getvalue()) if out.getvalue() else None), err.getvalue()


def test_the_command_starts_a_run_shows_progress_and_prints_the_totals(aws, monkeypatch) -> None:
    s3, dynamodb = aws
    upload(s3, ["a.jpg", "b.jpg"])

    with rescore_machine(monkeypatch) as machine:
        monkeypatch.setenv(rescore.STATE_MACHINE_ENV, machine.arn)
        status, totals, progress = rescore_cli("--prefix", PREFIX, "--wait", "--interval", "0.2")
        started, answer, _ = rescore_cli("--prefix", PREFIX, "--since", "2026-11-01")

    assert status == 0 and totals["status"] == "SUCCEEDED", progress
    assert totals["items"]["total"] == totals["items"]["succeeded"] == 2 and totals["errors"] == {}
    assert totals["report"].startswith(f"s3://{BUCKET}/rescore-reports/")
    assert "2/2 items" in progress.splitlines()[-1] and "[" + "#" * rescore.BAR_WIDTH + "]" in progress
    assert len(results(dynamodb)) == 2
    # Without --wait: the execution's ARN, and the run goes on by itself.
    assert started == 0 and answer["execution_arn"].startswith("arn:aws:states:")
    assert answer["since"] == "2026-11-01T00:00:00.000Z"


def test_the_report_files_are_read_as_step_functions_writes_them(aws) -> None:
    s3, _ = aws
    prefix = "rescore-reports/0d4b5c8e/"
    outputs = [{"status": "scored"}, {"status": "duplicate"}, {"status": "scored"}, {"status": "failed"}]
    succeeded = [{"Status": "SUCCEEDED", "Output": json.dumps(output), "Input": "{}"} for output in outputs]
    failed = [{"Status": "FAILED", "Error": "ClientError", "Cause": "{}"}]
    files = {"SUCCEEDED": succeeded, "FAILED": failed, "PENDING": []}
    manifest = {"DestinationBucket": BUCKET, "MapRunArn": "arn", "ResultFiles": {}}
    for name, entries in files.items():
        body = json.dumps(entries).encode()
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}{name}_0.json", Body=body)
        manifest["ResultFiles"][name] = [{"Key": f"{prefix}{name}_0.json", "Size": len(body) if entries else 0}]
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}manifest.json", Body=json.dumps(manifest).encode())
    details = {"Bucket": BUCKET, "Key": f"{prefix}manifest.json"}
    execution = {"status": "FAILED", "error": "States.ExceedToleratedFailureThreshold"}

    output = json.dumps({"map_run": {"ResultWriterDetails": details}})

    totals = rescore.report_totals(s3, {**execution, "output": output})

    assert totals.outcomes == {"scored": 2, "duplicate": 1, "failed": 1}
    assert totals.errors == {"ClientError": 1, "States.ExceedToleratedFailureThreshold": 1}
    assert totals.report == f"s3://{BUCKET}/{prefix}manifest.json"


def test_the_command_runs_the_same_items_here_with_local(aws) -> None:
    s3, dynamodb = aws
    upload(s3, ["a.jpg", "coffee.jpg"])
    put_object(s3, "incoming/patient 008/ward a/other.jpg", face_jpeg())

    first = rescore_cli("--prefix", PREFIX, "--local")
    again = rescore_cli("--prefix", PREFIX, "--local", "--bucket", BUCKET)

    assert first[0] == 0 and first[1]["outcomes"] == {"scored": 2} and first[1]["items"]["total"] == 2
    assert again[0] == 0 and again[1]["outcomes"] == {"duplicate": 2}
    assert {item["key"].rsplit("/", 1)[-1] for item in results(dynamodb)} == {"a.jpg", "coffee.jpg"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--prefix", "rescore-reports/"], "must start with 'incoming/'"),
        (["--prefix", PREFIX, "--since", "last tuesday"], "--since is not a time"),
        (["--prefix", PREFIX], "name the state machine"),
        (["--prefix", PREFIX, "--stack", "meaa"], "has no RescoreStateMachineArn output"),
    ],
)
def test_usage_errors_are_said_and_start_nothing(aws, argv: list[str], message: str) -> None:
    boto3.client("cloudformation").create_stack(
        StackName="meaa",
        TemplateBody=json.dumps({"Resources": {"Nothing": {"Type": "AWS::SNS::Topic"}}}),
    )
    status, answer, said = rescore_cli(*argv)
    assert (status, answer) == (2, None) and message in said


def test_the_state_machine_is_read_from_the_stack_output(aws) -> None:
    template = {
        "Resources": {"Nothing": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"RescoreStateMachineArn": {"Value": "arn:aws:states:us-east-1:123456789012:stateMachine:m"}},
    }
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(StackName="meaa", TemplateBody=json.dumps(template))
    arn = rescore.state_machine_arn(None, "meaa", cloudformation)
    assert arn == "arn:aws:states:us-east-1:123456789012:stateMachine:m"
    assert rescore.state_machine_arn("explicit", "meaa", cloudformation) == "explicit"
