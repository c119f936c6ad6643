"""Re-score the drop bucket's objects under a prefix with the deployed model: ``python -m meaa_batch.rescore``.

Starts an execution of the stack's re-score state machine (template.yaml's RescoreStateMachine: a Distributed Map
that hands each listed object to the batch function; README, "Re-scoring the archive"). Its ARN comes from
``--state-machine-arn``, else ``MEAA_RESCORE_STATE_MACHINE_ARN``, else the ``RescoreStateMachineArn`` output of
``--stack``. With ``--wait`` it draws a progress bar from the map run's item counts (``DescribeMapRun``), then
prints the report's totals (the ResultWriter's manifest and result files) as one JSON line.

``--local`` lists the prefix here and runs the same items through the same scorer in this process (the models of
this machine; ``MEAA_TABLE_NAME``, ``MEAA_IDEMPOTENCY_TABLE`` and the bucket from ``--bucket`` or
``MEAA_DROP_BUCKET``): for a small prefix, or to try a model before deploying it.

Exit status: 0 when the run succeeded (or was started, without ``--wait``), 1 when it failed or, locally, when
an object could not be processed; 2 for a usage error. Objects already scored by the current model version are
found done and cost no scoring; a bad object gets its failure item and counts as processed.

Usage::

    python -m meaa_batch.rescore --prefix incoming/<subject>/ [--since 2026-11-01] [--wait]
        [--stack meaa | --state-machine-arn ARN] [--local [--bucket NAME]]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from meaa.config import Settings
from meaa.store import iso_z

from .events import RESCORE_SOURCE, parse_time

STATE_MACHINE_ENV = "MEAA_RESCORE_STATE_MACHINE_ARN"
STACK_OUTPUT = "RescoreStateMachineArn"
BAR_WIDTH = 30


class UsageError(Exception):
    """A wrong option: said on stderr, exit status 2."""


@dataclass
class Totals:
    """What a run did: the map run's item counts, the objects' outcomes (``scored``, ``duplicate``, ``failed``:
    a failure item, ``before_since``, ...) and the errors of items that failed after their retries."""

    status: str
    items: dict[str, int] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "items": self.items,
            "outcomes": dict(sorted(self.outcomes.items())),
            "errors": dict(sorted(self.errors.items())),
            "report": self.report,
        }


class ProgressBar:
    """``[#####.....]  50%  500/1000 items  10 running  2 failed`` on stderr: redrawn in place on a terminal,
    a new line when the counts change otherwise (logs, CI)."""

    def __init__(self, out: IO[str]) -> None:
        self.out, self.last = out, ""
        self.in_place = bool(getattr(out, "isatty", lambda: False)())

    def draw(self, counts: dict[str, int]) -> None:
        total, running = int(counts.get("total", 0)), int(counts.get("running", 0))
        finished = sum(int(counts.get(name, 0)) for name in ("succeeded", "failed", "timedOut", "aborted"))
        share = finished / total if total else 0.0
        filled = round(share * BAR_WIDTH)
        line = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}  {finished}/{total} items  "
            f"{running} running  {int(counts.get('failed', 0))} failed"
        )
        if line == self.last:
            return
        self.last = line
        self.out.write(f"\r{line}" if self.in_place else f"{line}\n")
        self.out.flush()

    def close(self) -> None:
        if self.in_place and self.last:
            self.out.write("\n")


# ---------------------------------------------------------------- on AWS


def state_machine_arn(explicit: str | None, stack: str | None, cloudformation: Any = None) -> str:
    """The re-score state machine: the option, else the environment, else the stack's output."""
    if explicit or os.environ.get(STATE_MACHINE_ENV):
        return explicit or os.environ[STATE_MACHINE_ENV]
    if not stack:
        raise UsageError(f"name the state machine: --state-machine-arn, {STATE_MACHINE_ENV} or --stack")
    (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    for output in described.get("Outputs", []):
        if output["OutputKey"] == STACK_OUTPUT:
            return output["OutputValue"]
    raise UsageError(f"stack {stack} has no {STACK_OUTPUT} output (deploy the template of this version)")


def start(stepfunctions: Any, arn: str, prefix: str, since: str | None) -> str:
    """Start a re-score of ``prefix``; the execution's ARN."""
    name = f"rescore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    payload = json.dumps({"prefix": prefix, "since": since})
    return stepfunctions.start_execution(stateMachineArn=arn, name=name, input=payload)["executionArn"]


def wait(stepfunctions: Any, execution_arn: str, bar: ProgressBar, interval_s: float = 5.0) -> dict[str, Any]:
    """Poll the execution and its map run until it ends, drawing the map run's item counts; its description."""
    map_run_arn: str | None = None
    while True:
        execution = stepfunctions.describe_execution(executionArn=execution_arn)
        map_run_arn = map_run_arn or _map_run_of(stepfunctions, execution_arn)
        if map_run_arn is not None:
            bar.draw(stepfunctions.describe_map_run(mapRunArn=map_run_arn)["itemCounts"])
        if execution["status"] != "RUNNING":
            bar.close()
            execution["mapRunItemCounts"] = (
                stepfunctions.describe_map_run(mapRunArn=map_run_arn)["itemCounts"] if map_run_arn else {}
            )
            return execution
        time.sleep(interval_s)


def _map_run_of(stepfunctions: Any, execution_arn: str) -> str | None:
    """The execution's map run, once started: its MapRunStarted event (among the first few of the history)."""
    events = stepfunctions.get_execution_history(executionArn=execution_arn, maxResults=100)["events"]
    for event in events:
        if event["type"] == "MapRunStarted":
            return event["mapRunStartedEventDetails"]["mapRunArn"]
    return None


def _result_files(s3: Any, bucket: str, manifest_key: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(status, entries) of each result file the ResultWriter's manifest lists (SUCCEEDED_0.json, FAILED_0.json,
    ...: JSON arrays of child executions, each with its ``Output`` or ``Error``)."""
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    for status, files in (manifest.get("ResultFiles") or {}).items():
        for result_file in files:
            if int(result_file.get("Size", 1)) == 0:
                continue
            body = s3.get_object(Bucket=manifest.get("DestinationBucket", bucket), Key=result_file["Key"])["Body"]
            yield status, json.loads(body.read())


def report_totals(s3: Any, execution: dict[str, Any]) -> Totals:
    """The totals of a finished execution: its map run's item counts and what its report says per object."""
    totals = Totals(execution["status"], dict(execution.get("mapRunItemCounts") or {}))
    if execution["status"] == "FAILED":
        totals.errors[str(execution.get("error") or "execution_failed")] += 1
    details = (json.loads(execution.get("output") or "{}").get("map_run") or {}).get("ResultWriterDetails")
    if not details:
        return totals
    totals.report = f"s3://{details['Bucket']}/{details['Key']}"
    for status, entries in _result_files(s3, details["Bucket"], details["Key"]):
        for entry in entries:
            if status == "SUCCEEDED":
                totals.outcomes[str(json.loads(entry.get("Output") or "{}").get("status", "unknown"))] += 1
            else:
                totals.errors[str(entry.get("Error") or status.lower())] += 1
    return totals


# ---------------------------------------------------------------- here


def listed_items(s3: Any, bucket: str, prefix: str, since: str | None) -> Iterator[dict[str, Any]]:
    """The state machine's map items for ``prefix``, built here from the same listing (its ItemSelector's shape)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for listed in page.get("Contents", []):
            entry = {
                "Key": listed["Key"],
                "ETag": listed["ETag"],
                "Size": listed["Size"],
                "LastModified": iso_z(listed["LastModified"]),
            }
            yield {"source": RESCORE_SOURCE, "bucket": bucket, "object": entry, "since": since}


def run_local(s3: Any, bucket: str, prefix: str, since: str | None, bar: ProgressBar) -> Totals:
    """Score the listed objects in this process, one at a time, through the batch handler's map-item entry."""
    from .handler import rescore_listed  # loads the scorer (settings, models, clients) only when asked

    items = list(listed_items(s3, bucket, prefix, since))
    totals = Totals("RUNNING", {"total": len(items), "succeeded": 0, "failed": 0})
    for item in items:
        try:
            totals.outcomes[rescore_listed(item)["status"]] += 1
            totals.items["succeeded"] += 1
        except Exception as error:  # noqa: BLE001 - counted like a map item that failed; the others go on
            totals.errors[type(error).__name__] += 1
            totals.items["failed"] += 1
        bar.draw(totals.items)
    bar.close()
    totals.status = "FAILED" if totals.items["failed"] else "SUCCEEDED"
    return totals


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m meaa_batch.rescore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", required=True, help="Key prefix to re-score, e.g. incoming/<subject>/")
    parser.add_argument("--since", help="Only objects last modified at or after this ISO 8601 date or time (UTC)")
    parser.add_argument("--wait", action="store_true", help="Show progress until the run ends, then the totals")
    parser.add_argument("--state-machine-arn", help=f"The re-score state machine (default: ${STATE_MACHINE_ENV})")
    parser.add_argument("--stack", help=f"Read the state machine from this stack's {STACK_OUTPUT} output")
    parser.add_argument("--local", action="store_true", help="Score the listed objects in this process instead")
    parser.add_argument("--bucket", help="The drop bucket, with --local (default: $MEAA_DROP_BUCKET)")
    parser.add_argument("--interval", type=float, default=5.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def checked(args: argparse.Namespace, settings: Settings) -> tuple[str, str | None]:
    """The prefix (inside the incoming prefix: only those objects are scored) and ``since`` as ISO 8601 UTC."""
    incoming = settings.batch.incoming_prefix
    if not args.prefix.startswith(incoming):
        raise UsageError(f"--prefix must start with {incoming!r} (only objects under it are scored)")
    try:
        since = iso_z(parse_time(args.since, "--since")) if args.since else None
    except ValueError as error:
        raise UsageError(str(error)) from None
    return args.prefix, since


def main(argv: list[str] | None = None, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr) -> int:
    args = parse_args(argv)
    settings = Settings.from_env()
    import boto3  # here, so --help needs no AWS configuration

    try:
        prefix, since = checked(args, settings)
        if args.local:
            bucket = args.bucket or settings.store.drop_bucket
            if not bucket:
                raise UsageError("--local needs --bucket or MEAA_DROP_BUCKET")
            totals = run_local(boto3.client("s3"), bucket, prefix, since, ProgressBar(err))
        else:
            stepfunctions = boto3.client("stepfunctions")
            arn = state_machine_arn(args.state_machine_arn, args.stack, boto3.client("cloudformation"))
            execution_arn = start(stepfunctions, arn, prefix, since)
            err.write(f"started {execution_arn}\n")
            if not args.wait:
                out.write(json.dumps({"execution_arn": execution_arn, "prefix": prefix, "since": since}) + "\n")
                return 0
            execution = wait(stepfunctions, execution_arn, ProgressBar(err), args.interval)
            totals = report_totals(boto3.client("s3"), execution)
    except UsageError as error:
        err.write(f"error: {error}\n")
        return 2
    out.write(json.dumps(totals.to_dict()) + "\n")
    return 0 if totals.status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
