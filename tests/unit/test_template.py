"""template.yaml: it lints, and the security properties the README promises hold.

Policies are checked on the template after the SAM transform (samtranslator, the library ``sam``
and CloudFormation use), so what is checked is what IAM will get, including what SAM adds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform

from devkit.lambda_loader import REPO_ROOT, TEMPLATE_PATH, load_template
from meaa import store
from meaa.config import Settings

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
INCOMING = "incoming/"


class _ManagedPolicies:
    """The one managed policy SAM attaches, without asking IAM for the list."""

    def load(self) -> dict[str, str]:
        return {"AWSLambdaBasicExecutionRole": BASIC_EXECUTION}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="module")
def transformed(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    document = load_template()
    for resource in document["Resources"].values():  # the transform wants uploaded artifacts
        for uri_key in ("CodeUri", "ContentUri"):
            if uri_key in resource.get("Properties", {}):
                resource["Properties"][uri_key] = "s3://artifacts/code.zip"
    return transform(document, {}, _ManagedPolicies())["Resources"]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    statements = []
    for policy in role["Properties"].get("Policies", []):
        document = policy["PolicyDocument"]["Statement"]
        statements.extend(document if isinstance(document, list) else [document])
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_sam_validate_lint_passes() -> None:
    sam = Path(sys.executable).parent / "sam"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(
        [str(sam), "validate", "--lint", "--template", str(TEMPLATE_PATH)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_drop_bucket_is_private_encrypted_and_expires(resources: dict[str, Any]) -> None:
    bucket = resources["DropBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]  # no ACLs
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == {"Ref": "DropRetentionDays"}
    assert "WebsiteConfiguration" not in bucket and "AccessControl" not in bucket


def test_drop_bucket_policy_denies_plain_http_and_grants_nobody(resources: dict[str, Any]) -> None:
    policy = resources["DropBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "DropBucket"}
    statements = policy["PolicyDocument"]["Statement"]
    assert all(statement["Effect"] == "Deny" for statement in statements), "the bucket policy only denies"
    (tls,) = statements
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Action"] == "s3:*" and len(tls["Resource"]) == 2  # the bucket and its objects


def test_batch_trigger_is_filtered_to_the_incoming_prefix_and_media_suffixes(transformed: dict[str, Any]) -> None:
    configurations = transformed["DropBucket"]["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    suffixes = set()
    for configuration in configurations:
        rules = {rule["Name"]: rule["Value"] for rule in configuration["Filter"]["S3Key"]["Rules"]}
        assert rules["prefix"] == INCOMING
        assert configuration["Event"] == "s3:ObjectCreated:*"
        assert configuration["Function"] == {"Fn::GetAtt": ["BatchFunction", "Arn"]}
        suffixes.add(rules["suffix"])
    assert {".jpg", ".jpeg", ".png", ".webp", ".mp4", ".mov", ".avi"} <= {suffix.lower() for suffix in suffixes}


def test_s3_may_invoke_the_batch_function_only_from_this_account(transformed: dict[str, Any]) -> None:
    permissions = [
        resource["Properties"]
        for name, resource in transformed.items()
        if resource["Type"] == "AWS::Lambda::Permission" and name.startswith("BatchFunction")
    ]
    assert permissions
    for permission in permissions:
        assert permission["Principal"] == "s3.amazonaws.com"
        assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_batch_role_reads_only_incoming_and_writes_only_the_tables(transformed: dict[str, Any]) -> None:
    role = transformed["BatchFunctionRole"]
    assert role["Properties"]["ManagedPolicyArns"] == [BASIC_EXECUTION]
    allowed = {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "sqs:SendMessage",
    }
    claims = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    for statement in _statements(role):
        assert statement["Effect"] == "Allow"
        actions = _actions(statement)
        assert set(actions) <= allowed, f"unexpected actions {set(actions) - allowed}"
        resource = statement["Resource"]
        assert resource != "*" and not isinstance(resource, list)
        if any(action.startswith("s3:") for action in actions):
            assert resource["Fn::Sub"].endswith(f"/{INCOMING}*"), "S3 read is limited to the incoming prefix"
        if resource == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}:
            assert set(actions) <= claims, "the claims table: claim, complete, release"
        elif any(action.startswith("dynamodb:") for action in actions):
            assert resource == {"Fn::GetAtt": ["ResultsTable", "Arn"]}, "DynamoDB access is the two tables only"
            assert not {"dynamodb:UpdateItem", "dynamodb:DeleteItem"} & set(actions), "results are never changed"
        if any(action.startswith("sqs:") for action in actions):
            assert resource == {"Fn::GetAtt": ["BatchFailureQueue", "Arn"]}


def test_batch_function_never_writes_to_s3(transformed: dict[str, Any]) -> None:
    actions = {action for statement in _statements(transformed["BatchFunctionRole"]) for action in _actions(statement)}
    assert not {action for action in actions if action.startswith("s3:") and not action.startswith("s3:Get")}


def test_api_role_reads_results_only_when_behind_jwt_and_only_by_query(transformed: dict[str, Any]) -> None:
    role = transformed["ApiFunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [BASIC_EXECUTION]
    (conditional,) = role["Policies"]
    condition, with_jwt, without_jwt = conditional["Fn::If"]
    assert condition == "UseJwtAuth" and without_jwt == {"Ref": "AWS::NoValue"}
    (statement,) = with_jwt["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and _actions(statement) == ["dynamodb:Query"]
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["ResultsTable", "Arn"]},
        {"Fn::Sub": "${ResultsTable.Arn}/index/BySubject"},
    ]
    variables = transformed["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["MEAA_AUTH_MODE"] == {"Ref": "AuthMode"}
    assert variables["MEAA_TABLE_NAME"] == {"Ref": "ResultsTable"}


def test_batch_retries_then_parks_failed_events_in_an_encrypted_queue(resources: dict[str, Any]) -> None:
    batch = resources["BatchFunction"]["Properties"]
    invoke_config = batch["EventInvokeConfig"]
    assert 0 < invoke_config["MaximumRetryAttempts"] <= 2
    assert invoke_config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["BatchFailureQueue", "Arn"]},
    }
    assert resources["BatchFailureQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    assert batch["ReservedConcurrentExecutions"] == {"Ref": "BatchReservedConcurrency"}
    assert batch["Environment"]["Variables"]["MEAA_TABLE_NAME"] == {"Ref": "ResultsTable"}
    assert batch["Environment"]["Variables"]["MEAA_INCOMING_PREFIX"] == INCOMING


def test_results_table_is_on_demand_encrypted_recoverable_with_a_subject_index(resources: dict[str, Any]) -> None:
    table = resources["ResultsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert [key["AttributeName"] for key in table["KeySchema"]] == ["pk", "sk"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "BySubject"
    assert [key["AttributeName"] for key in index["KeySchema"]] == ["subject", "subject_time"]
    defined = {definition["AttributeName"] for definition in table["AttributeDefinitions"]}
    assert defined == {"pk", "sk", "subject", "subject_time"}
    assert resources["ResultsTable"]["DeletionPolicy"] == "Retain"


def test_upload_route_uses_the_jwt_authorizer_only_when_auth_mode_is_jwt(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert template["Parameters"]["AuthMode"]["AllowedValues"] == ["none", "jwt"]
    assert template["Conditions"]["UseJwtAuth"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "jwt"]}
    assert resources["JwtAuthorizer"]["Condition"] == "UseJwtAuth"
    jwt = resources["JwtAuthorizer"]["Properties"]
    assert jwt["AuthorizerType"] == "JWT"
    assert jwt["JwtConfiguration"] == {"Issuer": {"Ref": "JwtIssuer"}, "Audience": {"Ref": "JwtAudience"}}
    upload = resources["UploadRoute"]["Properties"]
    assert upload["RouteKey"] == "POST /upload-meaa-image"
    assert upload["AuthorizationType"] == {"Fn::If": ["UseJwtAuth", "JWT", "NONE"]}
    routes = {r["Properties"]["RouteKey"]: r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"}
    open_routes = {"GET /health", "GET /openapi.json", "GET /docs", "GET /docs/{file}"}
    results_routes = {"GET /subjects/{subject}/moods", "GET /objects/{key+}"}
    page_routes = {"GET /", "GET /static/{file+}"}
    assert set(routes) == {"POST /upload-meaa-image"} | open_routes | results_routes | page_routes
    for key in page_routes:  # the static try-it page, only when asked for; it holds no data
        assert routes[key]["Condition"] == "ServeTryItPage"
    for key in open_routes:
        assert routes[key]["Properties"]["AuthorizationType"] == "NONE" and "Condition" not in routes[key]
    for key in results_routes:  # the stored results exist only behind the authorizer
        assert routes[key]["Condition"] == "UseJwtAuth"
        assert routes[key]["Properties"]["AuthorizationType"] == "JWT"
        assert routes[key]["Properties"]["AuthorizerId"] == {"Ref": "JwtAuthorizer"}
    stage = resources["HttpApiStage"]["Properties"]["DefaultRouteSettings"]
    assert stage == {
        "ThrottlingRateLimit": {"Ref": "ThrottleRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottleBurstLimit"},
    }
    assert resources["HttpApi"]["Properties"]["CorsConfiguration"]["AllowOrigins"] == {"Ref": "CorsAllowOrigins"}


def test_functions_and_layer_agree_on_runtime_and_architecture(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    layer = template["Resources"]["MeaaLayer"]
    assert globals_["Runtime"] == "python3.12" and layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert globals_["Architectures"] == layer["Properties"]["CompatibleArchitectures"]
    assert layer["Metadata"]["BuildArchitecture"] == globals_["Architectures"][0]
    assert layer["Properties"]["ContentUri"] == "layers/"
    assert globals_["Layers"] == [{"Ref": "MeaaLayer"}]


def test_every_log_group_has_a_retention_and_functions_log_to_them(resources: dict[str, Any]) -> None:
    groups = [name for name, resource in resources.items() if resource["Type"] == "AWS::Logs::LogGroup"]
    assert {"ApiLogGroup", "BatchLogGroup", "ApiAccessLogGroup"} <= set(groups)
    for name in groups:
        assert resources[name]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    for function, group in (("ApiFunction", "ApiLogGroup"), ("BatchFunction", "BatchLogGroup")):
        assert resources[function]["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": group}


def test_outputs_name_the_api_bucket_and_table(template: dict[str, Any]) -> None:
    assert {"ApiUrl", "UploadUrl", "DropBucketName", "ResultsTableName", "BatchFailureQueueUrl"} <= set(
        template["Outputs"]
    )


# ---------------------------------------------------------------- alarms

NOTIFY = {"Fn::If": ["NotifyByEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}


def _alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _alarm_on(alarms: dict[str, dict[str, Any]], namespace: str, metric: str, dimension: dict[str, Any]) -> dict:
    (found,) = [
        alarm
        for alarm in alarms.values()
        if alarm.get("Namespace") == namespace
        and alarm.get("MetricName") == metric
        and alarm["Dimensions"] == [dimension]
    ]
    return found


def test_failed_batch_events_in_the_queue_raise_an_alarm(resources: dict[str, Any]) -> None:
    alarm = _alarm_on(
        _alarms(resources),
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["BatchFailureQueue", "QueueName"]}},
    )
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Maximum",
        0,
        "GreaterThanThreshold",
    )
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 300, "a parked event is reported within 5 minutes"


@pytest.mark.parametrize("function", ["ApiFunction", "BatchFunction"])
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_each_function_has_error_and_throttle_alarms(resources: dict[str, Any], function: str, metric: str) -> None:
    alarm = _alarm_on(_alarms(resources), "AWS/Lambda", metric, {"Name": "FunctionName", "Value": {"Ref": function}})
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    assert alarm["Period"] == 300 and 1 <= alarm["EvaluationPeriods"] <= 3


def test_api_5xx_rate_alarm_divides_5xx_by_requests_of_this_api(resources: dict[str, Any]) -> None:
    (alarm,) = [alarm for alarm in _alarms(resources).values() if "Metrics" in alarm]
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    api = [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]
    for query_id, metric in (("errors", "5xx"), ("requests", "Count")):
        stat = queries[query_id]["MetricStat"]
        assert stat["Metric"] == {"Namespace": "AWS/ApiGateway", "MetricName": metric, "Dimensions": api}
        assert stat["Stat"] == "Sum" and queries[query_id]["ReturnData"] is False
    (returned,) = [query for query in alarm["Metrics"] if query.get("ReturnData", True)]
    expression = returned["Expression"]["Fn::Sub"]
    assert expression == "IF(requests >= ${ApiAlarmMinRequests}, 100 * errors / requests, 0)"
    assert alarm["Threshold"] == {"Ref": "Api5xxRatePercent"} and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_api_p99_latency_alarm(resources: dict[str, Any]) -> None:
    alarm = _alarm_on(_alarms(resources), "AWS/ApiGateway", "Latency", {"Name": "ApiId", "Value": {"Ref": "HttpApi"}})
    assert alarm["ExtendedStatistic"] == "p99" and "Statistic" not in alarm
    assert alarm["Threshold"] == {"Ref": "ApiLatencyP99Ms"} and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_every_alarm_notifies_the_optional_topic_and_is_quiet_without_data(resources: dict[str, Any]) -> None:
    alarms = _alarms(resources)
    assert len(alarms) == 7
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == NOTIFY and alarm["OKActions"] == NOTIFY, name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), name
        assert "README" in alarm["AlarmDescription"], name


def test_alarm_email_is_optional(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["AlarmEmail"]
    assert parameter["Default"] == ""
    assert template["Conditions"]["NotifyByEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    topic = template["Resources"]["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic" and topic["Condition"] == "NotifyByEmail"
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    assert template["Outputs"]["AlarmTopicArn"]["Condition"] == "NotifyByEmail"
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("oncall@example.org") and not pattern.fullmatch("not an address")


def test_alarm_thresholds_in_readme_match_the_template(template: dict[str, Any]) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for name in _alarms(template["Resources"]):
        assert f"`{name}`" in readme, f"README's alarm table lacks {name}"
    for parameter in ("AlarmEmail", "Api5xxRatePercent", "ApiAlarmMinRequests", "ApiLatencyP99Ms"):
        assert f"`{parameter}`" in readme


# ---------------------------------------------------------------- results retention


def test_results_retention_sets_the_ttl_attribute_that_the_batch_writes(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ResultsRetentionDays"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 0, 0)
    variables = template["Resources"]["BatchFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["MEAA_RESULTS_RETENTION_DAYS"] == {"Ref": "ResultsRetentionDays"}
    assert Settings.from_env({"MEAA_RESULTS_RETENTION_DAYS": "30", "MEAA_TABLE_NAME": "t"}).store.retention_days == 30
    ttl = template["Resources"]["ResultsTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": store.Attr.EXPIRES_AT, "Enabled": True}
    idempotency_ttl = template["Resources"]["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]
    assert idempotency_ttl == {"AttributeName": "expiration", "Enabled": True}  # Powertools' attribute name
