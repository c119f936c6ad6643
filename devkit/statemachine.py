"""The re-score state machine on moto: template.yaml's RescoreStateMachine with its DefinitionSubstitutions
resolved, created in moto's Step Functions, which executes it (``mock_aws(config=EXECUTE)``); its Task invokes a
moto Lambda function whose invocations run the real batch handler, imported from template.yaml like Lambda.

moto 5.2.5's Distributed Map lists the bucket (one page: up to 1,000 keys, as tests need), runs the items
MaxConcurrency at a time, applies the Task's Retry and writes the ResultWriter's manifest (without the result
files AWS writes next to it). It does not enforce ToleratedFailurePercentage (``map_run_record.py``: "TODO: add
support for failure toleration fields"): failed items are counted and the run succeeds.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from devkit.aws import BUCKET
from devkit.lambda_loader import REPO_ROOT, lambda_context, load_handler, load_template

EXECUTE = {"stepfunctions": {"execute_state_machine": True}}
STATE_MACHINE = "RescoreStateMachine"
ACCOUNT, REGION = "123456789012", "us-east-1"
FUNCTION_NAME = "meaa-batch"


def _resolve(value: Any, parameters: dict[str, Any], attributes: dict[str, str]) -> str:
    """A DefinitionSubstitutions value as CloudFormation resolves it (the forms the template uses)."""
    if isinstance(value, (str, int, float)):
        return str(value)
    if "Ref" in value:
        return str(parameters[value["Ref"]])
    if "Fn::GetAtt" in value:
        return attributes[".".join(value["Fn::GetAtt"])]
    if "Fn::Sub" in value:
        names = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws", **parameters}
        return re.sub(r"\$\{([\w:]+)\}", lambda match: str(names[match.group(1)]), value["Fn::Sub"])
    raise ValueError(f"unsupported substitution {value!r}")


def definition(function_arn: str, **parameter_overrides: Any) -> tuple[str, dict[str, str]]:
    """The state machine's ASL with template.yaml's substitutions applied (parameters at their defaults unless
    overridden), and the substitutions."""
    template = load_template()
    parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    parameters.update(parameter_overrides)
    properties = template["Resources"][STATE_MACHINE]["Properties"]
    substitutions = {
        name: _resolve(value, parameters, {"BatchFunction.Arn": function_arn})
        for name, value in properties["DefinitionSubstitutions"].items()
    }
    text = (REPO_ROOT / properties["DefinitionUri"]).read_text(encoding="utf-8")
    resolved = re.sub(r"\$\{(\w+)\}", lambda match: substitutions[match.group(1)], text)
    json.loads(resolved)  # what CloudFormation hands Step Functions must be JSON
    return resolved, substitutions


class _BatchFunctionInvoker:
    """Runs moto Lambda invocations through the real batch handler, one at a time (a Lambda instance serves one
    invocation at a time), answering as Lambda does: the handler's return value, or its error as
    ``{"errorType", "errorMessage"}`` with a function error."""

    def __init__(self) -> None:
        self.handler = load_handler("BatchFunction")
        self.events: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []  # each answer, or {"errorType", "errorMessage"}
        self._lock = threading.Lock()

    def __call__(self, _function: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, (str, bytes)) else event
        with self._lock:
            self.events.append(payload)
            try:
                answer = json.loads(json.dumps(self.handler(payload, lambda_context("BatchFunction")), default=str))
                errored, logs = False, ""
            except Exception as error:  # noqa: BLE001 - the Lambda runtime reports it to the caller
                answer = {"errorType": type(error).__name__, "errorMessage": str(error)}
                errored, logs = True, traceback.format_exc()
            self.answers.append(answer)
            return json.dumps(answer), errored, logs


@dataclass
class RescoreRun:
    """One finished execution: its description, its map run's, and what the batch function was handed and
    answered (in the order it was invoked; retries included)."""

    execution: dict[str, Any]
    map_run: dict[str, Any] | None
    invocations: list[dict[str, Any]]
    answers: list[dict[str, Any]]

    @property
    def output(self) -> dict[str, Any]:
        return json.loads(self.execution.get("output") or "{}")


class RescoreMachine:
    """The state machine created in moto (inside ``mock_aws(config=EXECUTE)``), ready to run executions."""

    def __init__(self, stepfunctions: Any, arn: str, invoker: _BatchFunctionInvoker) -> None:
        self.stepfunctions, self.arn, self._invoker = stepfunctions, arn, invoker

    def run(self, prefix: str, since: str | None = None, timeout_s: float = 600) -> RescoreRun:
        first = len(self._invoker.events)
        started = self.stepfunctions.start_execution(
            stateMachineArn=self.arn,
            name=f"rescore-{uuid.uuid4()}",
            input=json.dumps({"prefix": prefix, "since": since}),
        )
        deadline = time.monotonic() + timeout_s
        while True:
            execution = self.stepfunctions.describe_execution(executionArn=started["executionArn"])
            if execution["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        runs = self.stepfunctions.list_map_runs(executionArn=started["executionArn"])["mapRuns"]
        map_run = self.stepfunctions.describe_map_run(mapRunArn=runs[0]["mapRunArn"]) if runs else None
        return RescoreRun(execution, map_run, self._invoker.events[first:], self._invoker.answers[first:])


@contextlib.contextmanager
def rescore_machine(monkeypatch: Any, **parameter_overrides: Any) -> Iterator[RescoreMachine]:
    """The batch function and the re-score state machine in moto (call inside ``mock_aws(config=EXECUTE)``, with
    the drop bucket and tables created); template parameters may be overridden (``RescoreMaxConcurrency=2``)."""
    import boto3
    from moto.awslambda.models import LambdaFunction

    invoker = _BatchFunctionInvoker()
    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", lambda function, event=None: invoker(function, event))
    role = boto3.client("iam").create_role(RoleName="rescore", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "")  # never run: invocations go to the real handler above
    function_arn = boto3.client("lambda").create_function(
        FunctionName=FUNCTION_NAME,
        Runtime="python3.12",
        Role=role,
        Handler="meaa_batch.handler.handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]
    text, substitutions = definition(function_arn, **parameter_overrides)
    assert substitutions["DropBucket"] == BUCKET, "devkit's bucket is the template's name for this account"
    stepfunctions = boto3.client("stepfunctions")
    arn = stepfunctions.create_state_machine(name="meaa-rescore", definition=text, roleArn=role)["stateMachineArn"]
    yield RescoreMachine(stepfunctions, arn, invoker)
