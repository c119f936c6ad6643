"""The hostile inputs (``devkit.hostile_inputs``) through the Lambda functions, each in a child process.

``--api``: every image input as a raw upload through the API app (ASGI, FastAPI's TestClient) and every fourth
one also through the Lambda entry point (an API Gateway HTTP API event, base64 body, as API Gateway sends it).
``--batch``: every other image input and every video input as an object in moto's in-process S3, scored by the
batch handler on an S3 event. Each child loads its function as Lambda does (``devkit.lambda_loader``),
warms it with a real selfie, and resets the process's peak RSS before each input, so each input's peak is its
own. It prints one JSON document: per input, what came back and the peak RSS.

    python -m devkit.hostile_handlers --api
    python -m devkit.hostile_handlers --batch
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
from typing import Any

from devkit.hostile_inputs import HostileInput, catalogue, release_freed_memory, selfie_jpeg, status_mb
from meaa.errors import ERRORS

UPLOAD = "/upload-meaa-image"


def expected_status(item: HostileInput, size: int, max_upload_bytes: int) -> set[int]:
    """HTTP statuses that are right for ``item`` sent as an upload of ``size`` bytes."""
    if size > max_upload_bytes:
        return {ERRORS["image_too_large"].http_status}
    return {200 if outcome == "ok" else ERRORS[outcome].http_status for outcome in item.expected}


def expected_batch_outcomes(item: HostileInput) -> set[tuple[str, str | None]]:
    """(status, error code) pairs of a batch outcome that are right for ``item``."""
    return {("scored", None) if outcome == "ok" else ("failed", outcome) for outcome in item.expected}


def _measured(run: Any) -> tuple[Any, float]:
    release_freed_memory()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # the peak RSS restarts from the current RSS
    result = run()
    return result, status_mb("VmHWM")


def _gateway_event(body: bytes) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"POST {UPLOAD}",
        "rawPath": UPLOAD,
        "rawQueryString": "",
        "headers": {"content-type": "application/octet-stream", "content-length": str(len(body))},
        "requestContext": {
            "http": {"method": "POST", "path": UPLOAD, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
            "requestId": "hostile",
            "routeKey": f"POST {UPLOAD}",
            "stage": "$default",
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def run_api() -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from devkit.lambda_loader import lambda_context, load_function_module

    module = load_function_module("ApiFunction")
    client = TestClient(module.app, raise_server_exceptions=False)
    client.post(UPLOAD, content=selfie_jpeg(), headers={"content-type": "image/jpeg"})
    results = []
    images = [item for item in catalogue() if item.kind == "image"]
    headers = {"content-type": "application/octet-stream"}
    for index, item in enumerate(images):
        data = item.make()
        response, peak = _measured(lambda data=data: client.post(UPLOAD, content=data, headers=headers))
        body = response.json()
        results.append(_api_row(item, "asgi", len(data), response.status_code, body, peak))
        if index % 4 == 0:
            event = _gateway_event(data)
            answer, peak = _measured(lambda event=event: module.handler(event, lambda_context("ApiFunction")))
            results.append(_api_row(item, "lambda", len(data), answer["statusCode"], json.loads(answer["body"]), peak))
    return {"max_upload_bytes": module.app.state.meaa.settings.api.max_upload_bytes, "results": results}


def _api_row(item: HostileInput, path: str, size: int, status: int, body: dict, peak: float) -> dict[str, Any]:
    return {
        "category": item.category,
        "name": item.name,
        "path": path,
        "bytes": size,
        "status": status,
        "code": (body.get("error") or {}).get("code"),
        "peak_rss_mb": peak,
    }


def run_batch() -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from devkit.aws import create_drop_bucket_and_tables, event_for, moto_environment, put_object
    from devkit.lambda_loader import lambda_context, load_handler

    for name, value in moto_environment().items():
        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    items = [item for index, item in enumerate(catalogue()) if item.kind == "video" or index % 2 == 0]
    results = []
    with mock_aws():
        s3 = boto3.client("s3")
        create_drop_bucket_and_tables(s3, boto3.client("dynamodb"))
        handler = load_handler("BatchFunction")
        handler(
            event_for([put_object(s3, "incoming/warm/up/selfie.jpg", selfie_jpeg())]), lambda_context("BatchFunction")
        )
        for index, item in enumerate(items):
            suffix = item.suffix if item.kind == "video" else ".jpg"
            event = event_for([put_object(s3, f"incoming/hostile/{item.category}/{index}{suffix}", item.make())])
            answer, peak = _measured(lambda event=event: handler(event, lambda_context("BatchFunction")))
            (outcome,) = answer["outcomes"]
            results.append(
                {
                    "category": item.category,
                    "name": item.name,
                    "status": outcome["status"],
                    "code": outcome.get("error_code"),
                    "peak_rss_mb": peak,
                }
            )
    return {"results": results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--api", action="store_true", help="the API function (ASGI and Lambda entry)")
    which.add_argument("--batch", action="store_true", help="the batch function on moto")
    parser.add_argument("--summary", action="store_true", help="a markdown table instead of the JSON document")
    args = parser.parse_args(argv)
    run = run_api if args.api else run_batch
    if args.summary:  # the table alone on stdout: the functions' log lines and metrics documents go nowhere
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            document = run()
    else:
        document = run()
    print(summary_table(document["results"]) if args.summary else json.dumps(document))


def summary_table(results: list[dict[str, Any]]) -> str:
    """Per entry path (the API's ASGI app or Lambda entry, or the batch handler): inputs, what came back, and
    the largest peak RSS of the whole function process with the input that caused it."""
    rows = ["| path | inputs | answers | largest peak RSS MB | input |", "| --- | --- | --- | ---: | --- |"]
    for path in dict.fromkeys(row.get("path", "batch") for row in results):
        mine = [row for row in results if row.get("path", "batch") == path]
        answers: dict[str, int] = {}
        for row in mine:
            answer = f"{row['status']} {row['code']}" if row["code"] else str(row["status"])
            answers[answer] = answers.get(answer, 0) + 1
        worst = max(mine, key=lambda row: row["peak_rss_mb"])
        listed = ", ".join(f"{count} {answer}" for answer, count in sorted(answers.items(), key=lambda a: -a[1]))
        rows.append(
            f"| {path} | {len(mine)} | {listed} | {worst['peak_rss_mb']:.0f} | {worst['category']}/{worst['name']} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
