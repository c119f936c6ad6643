"""template.yaml: it lints, and the security properties the README promises hold.

Policies are checked on the template after the SAM transform (samtranslator, the library ``sam``
and CloudFormation use), so what is checked is what IAM will get, including what SAM adds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devkit.lambda_loader import REPO_ROOT, TEMPLATE_PATH, load_template
from meaa import store
from meaa.config import Settings
from meaa.object_keys import MEDIA_TYPES
from meaa_batch.events import RESCORE_SOURCE
from tests.support.sam_template import BASIC_EXECUTION, TemplateResolver, transformed_template

INCOMING = "incoming/"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    return transformed_template()["Resources"]


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
    (encryption,) = TemplateResolver(load_template()).value(
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    )
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}  # with a key: test_template_keys
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == {"Ref": "DropRetentionDays"}
    assert "WebsiteConfiguration" not in bucket and "AccessControl" not in bucket


def test_drop_bucket_policy_denies_plain_http_and_grants_nobody(template: dict[str, Any]) -> None:
    policy = TemplateResolver(template).resources()["DropBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "DropBucket"}
    statements = policy["PolicyDocument"]["Statement"]
    assert all(statement["Effect"] == "Deny" for statement in statements), "the bucket policy only denies"
    (tls,) = statements  # with a customer key, two more denials: test_template_keys
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
    # Every suffix the batch function scores (and POST /uploads signs, always in lower case) triggers it.
    assert set(MEDIA_TYPES) <= suffixes


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
        "dynamodb:Query",
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


def test_api_role_behind_jwt_gets_exactly_what_its_routes_need(transformed: dict[str, Any]) -> None:
    """Without jwt the API role touches no data; with it: Query the results (table and BySubject), Query,
    PutItem and DeleteItem on the assignments table (test_access_matrix records that the routes make exactly
    these calls), and PutObject under incoming/ to sign direct uploads. Nothing else, nowhere else."""
    role = transformed["ApiFunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [BASIC_EXECUTION]
    (conditional,) = role["Policies"]
    condition, with_jwt, without_jwt = conditional["Fn::If"]
    assert condition == "UseJwtAuth" and without_jwt == {"Ref": "AWS::NoValue"}
    statements = {statement["Sid"]: statement for statement in with_jwt["PolicyDocument"]["Statement"]}
    expected = {
        "QueryResultsBehindJwt": (
            ["dynamodb:Query"],
            [{"Fn::GetAtt": ["ResultsTable", "Arn"]}, {"Fn::Sub": "${ResultsTable.Arn}/index/BySubject"}],
        ),
        "ReadAssignmentsBehindJwt": (["dynamodb:Query"], {"Fn::GetAtt": ["AssignmentsTable", "Arn"]}),
        "ChangeAssignmentsBehindJwt": (
            ["dynamodb:DeleteItem", "dynamodb:PutItem"],
            {"Fn::GetAtt": ["AssignmentsTable", "Arn"]},
        ),
        "SignDirectUploadsBehindJwt": (
            ["s3:PutObject"],
            {
                "Fn::Sub": "arn:${AWS::Partition}:s3:::${DropBucketNamePrefix}-${AWS::AccountId}-${AWS::Region}"
                f"/{INCOMING}*"
            },
        ),
    }
    assert set(statements) == set(expected)
    for sid, (actions, resource) in expected.items():
        statement = statements[sid]
        assert statement["Effect"] == "Allow" and "Condition" not in statement, sid
        assert sorted(_actions(statement)) == actions, sid
        assert statement["Resource"] == resource, sid
    variables = transformed["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["MEAA_AUTH_MODE"] == {"Ref": "AuthMode"}
    assert variables["MEAA_TABLE_NAME"] == {"Ref": "ResultsTable"}
    assert variables["MEAA_ASSIGNMENTS_TABLE"] == {"Ref": "AssignmentsTable"}
    assert variables["MEAA_SUBJECT_CLAIM"] == {"Ref": "SubjectClaim"}


def test_assignments_table_is_its_own_encrypted_recoverable_table(resources: dict[str, Any]) -> None:
    from meaa_aws import assignments

    table = resources["AssignmentsTable"]
    properties = table["Properties"]
    assert table["DeletionPolicy"] == "Retain" and "Condition" not in table
    assert properties["BillingMode"] == "PAY_PER_REQUEST" and properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    keys = [(key["AttributeName"], key["KeyType"]) for key in properties["KeySchema"]]
    assert keys == [(assignments.CLINICIAN, "HASH"), (assignments.SUBJECT, "RANGE")]
    assert "GlobalSecondaryIndexes" not in properties and "TimeToLiveSpecification" not in properties


def test_both_functions_share_the_incoming_prefix_and_object_limit(template: dict[str, Any]) -> None:
    """The API signs upload policies with the batch function's limit and checks keys by its layout: one
    value each, in Globals, for both functions."""
    globals_ = template["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_["MEAA_INCOMING_PREFIX"] == INCOMING
    assert globals_["MEAA_MAX_OBJECT_BYTES"] == {"Fn::Sub": "${MaxObjectMegabytes}000000"}
    for function in ("ApiFunction", "BatchFunction"):
        own = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert "MEAA_INCOMING_PREFIX" not in own and "MEAA_MAX_OBJECT_BYTES" not in own, function


def test_batch_retries_then_parks_failed_events_in_an_encrypted_queue(resources: dict[str, Any]) -> None:
    batch = resources["BatchFunction"]["Properties"]
    invoke_config = batch["EventInvokeConfig"]
    assert 0 < invoke_config["MaximumRetryAttempts"] <= 2
    assert invoke_config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["BatchFailureQueue", "Arn"]},
    }
    queue = TemplateResolver(load_template()).resources()["BatchFailureQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True  # with a customer key: test_template_keys
    assert batch["Environment"]["Variables"]["MEAA_TABLE_NAME"] == {"Ref": "ResultsTable"}


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
    assert jwt["AuthorizerType"] == "JWT" and jwt["IdentitySource"] == ["$request.header.Authorization"]
    assert jwt["JwtConfiguration"] == {
        "Issuer": {
            "Fn::If": [
                "MakeUserPool",
                {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"},
                {"Ref": "JwtIssuer"},
            ]
        },
        "Audience": {"Fn::If": ["MakeUserPool", [{"Ref": "UserPoolClient"}], {"Ref": "JwtAudience"}]},
    }
    upload = resources["UploadRoute"]["Properties"]
    assert upload["RouteKey"] == "POST /upload-meaa-image"
    assert upload["AuthorizationType"] == {"Fn::If": ["UseJwtAuth", "JWT", "NONE"]}
    routes = {r["Properties"]["RouteKey"]: r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"}
    open_routes = {"GET /health", "GET /openapi.json", "GET /docs", "GET /docs/{file}"}
    results_routes = {
        "GET /subjects/{subject}/moods",
        "GET /objects/{key+}",
        "POST /uploads",
        "GET /me",
        "PUT /clinicians/{clinician}/subjects/{subject}",
        "DELETE /clinicians/{clinician}/subjects/{subject}",
        "GET /clinicians/{clinician}/subjects",
    }
    page_routes = {"GET /", "GET /static/{file+}"}
    assert set(routes) == {"POST /upload-meaa-image"} | open_routes | results_routes | page_routes
    for key in page_routes:  # the static try-it page, only when asked for; it holds no data
        assert routes[key]["Condition"] == "ServeTryItPage"
    for key in open_routes:
        assert routes[key]["Properties"]["AuthorizationType"] == "NONE" and "Condition" not in routes[key]
    for key in results_routes:  # stored results, uploads and assignments exist only behind the authorizer
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
    outputs = {
        "ApiUrl",
        "UploadUrl",
        "DropBucketName",
        "ResultsTableName",
        "BatchFailureQueueUrl",
        "AccessLogBucketName",
    }
    assert outputs <= set(template["Outputs"])
    assert template["Outputs"]["DataKeyArn"]["Condition"] == "UseKmsKey"


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
    assert len(alarms) == 8
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
    for parameter in ("AlarmEmail", "Api5xxRatePercent", "ApiAlarmMinRequests", "ApiLatencyP99Ms", "AccessDeniedBurst"):
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


# ---------------------------------------------------------------- access: refusals alarm, optional user pool


def test_a_burst_of_refusals_raises_the_access_denied_alarm(resources: dict[str, Any]) -> None:
    from meaa_api.observability import SERVICE
    from meaa_aws.observability import NAMESPACE

    alarm = _alarm_on(_alarms(resources), NAMESPACE, "AccessDenied", {"Name": "service", "Value": SERVICE})
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert alarm["Threshold"] == {"Ref": "AccessDeniedBurst"}
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_create_user_pool_makes_a_public_pkce_client_and_the_two_groups(template: dict[str, Any]) -> None:
    from meaa_api.auth import ADMINS_GROUP, CLINICIANS_GROUP

    resources, conditions = template["Resources"], template["Conditions"]
    assert template["Parameters"]["CreateUserPool"]["Default"] == "false"
    assert conditions["MakeUserPool"] == {
        "Fn::And": [{"Condition": "UseJwtAuth"}, {"Fn::Equals": [{"Ref": "CreateUserPool"}, "true"]}]
    }
    cognito = {name: r for name, r in resources.items() if r["Type"].startswith("AWS::Cognito::")}
    assert {r["Condition"] for r in cognito.values()} <= {"MakeUserPool", "MakeUserPoolDomain"}
    groups = {r["Properties"]["GroupName"] for r in cognito.values() if r["Type"] == "AWS::Cognito::UserPoolGroup"}
    assert groups == {ADMINS_GROUP, CLINICIANS_GROUP}
    pool = resources["UserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # no self sign-up
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    client = resources["UserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False and client["AllowedOAuthFlows"] == ["code"]  # public client: PKCE
    assert "implicit" not in client["AllowedOAuthFlows"] and client["EnableTokenRevocation"] is True
    assert not any("PASSWORD" in flow for flow in client["ExplicitAuthFlows"])  # no password sent to the API's pool
    assert template["Outputs"]["UserPoolClientId"]["Condition"] == "MakeUserPool"


# ---------------------------------------------------------------- re-scoring the archive

RESCORE_MACHINE = "${AWS::StackName}-rescore"
DROP_BUCKET = "${DropBucketNamePrefix}-${AWS::AccountId}-${AWS::Region}"


def _rescore_definition(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The state machine's properties and its ASL with each ${...} placeholder left as its name."""
    properties = template["Resources"]["RescoreStateMachine"]["Properties"]
    text = (REPO_ROOT / properties["DefinitionUri"]).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == set(properties["DefinitionSubstitutions"]), "every placeholder has a substitution"
    # Quoted placeholders (names, ARNs) and bare ones (numbers) both become the string of their name.
    named = re.sub(r"\$\{(\w+)\}", r'"\1"', re.sub(r'"\$\{(\w+)\}"', r"${\1}", text))
    return properties, json.loads(named)


def test_rescore_state_machine_role_is_least_privilege(transformed: dict[str, Any], template: dict[str, Any]) -> None:
    properties = template["Resources"]["RescoreStateMachine"]["Properties"]
    assert properties["Name"] == {"Fn::Sub": RESCORE_MACHINE}  # the ARN its own policy names
    role = transformed["RescoreStateMachineRole"]["Properties"]
    assert not role.get("ManagedPolicyArns")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["states.amazonaws.com"]}
    statements = {statement["Sid"]: statement for statement in _statements(transformed["RescoreStateMachineRole"])}
    assert all(statement["Effect"] == "Allow" for statement in statements.values())
    arn = "arn:${AWS::Partition}"
    expected = {
        # the Distributed Map starts, watches and stops its own child executions, of this state machine only
        "RunOwnMapChildren": (
            ["states:StartExecution"],
            {"Fn::Sub": f"{arn}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{RESCORE_MACHINE}"},
        ),
        "WatchOwnMapChildren": (
            ["states:DescribeExecution", "states:StopExecution"],
            [
                {"Fn::Sub": f"{arn}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{RESCORE_MACHINE}:*"},
                {"Fn::Sub": f"{arn}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{RESCORE_MACHINE}/*"},
            ],
        ),
        # the listing: the drop bucket, under the incoming prefix only
        "ListIncomingObjects": (["s3:ListBucket"], {"Fn::Sub": f"{arn}:s3:::{DROP_BUCKET}"}),
        # exactly the batch function
        "ScoreWithBatchFunction": (["lambda:InvokeFunction"], {"Fn::GetAtt": ["BatchFunction", "Arn"]}),
        # the ResultWriter's report prefix only
        "WriteRescoreReports": (
            ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
            {"Fn::Sub": f"{arn}:s3:::{DROP_BUCKET}/rescore-reports/*"},
        ),
    }
    for sid, (actions, resource) in expected.items():
        assert _actions(statements[sid]) == actions and statements[sid]["Resource"] == resource, sid
    condition = statements["ListIncomingObjects"]["Condition"]
    assert condition == {"StringLike": {"s3:prefix": [f"{INCOMING}*"]}}
    # CloudWatch Logs' log delivery API takes no resource: "*" there, and only there, for delivery actions only.
    delivery = statements["DeliverLogs"]
    assert delivery["Resource"] == "*" and all(action.startswith("logs:") for action in _actions(delivery))
    assert not {"logs:PutLogEvents", "logs:CreateLogGroup", "logs:DeleteLogGroup"} & set(_actions(delivery))
    assert set(statements) == {*expected, "DeliverLogs"}
    # What the role allows is what the definition uses.
    substitutions = properties["DefinitionSubstitutions"]
    assert substitutions["BatchFunctionArn"] == {"Fn::GetAtt": ["BatchFunction", "Arn"]}
    assert substitutions["DropBucket"] == {"Fn::Sub": DROP_BUCKET}
    assert substitutions["ReportPrefix"] == "rescore-reports/"


def test_rescore_definition_maps_the_listing_through_the_batch_function_within_its_limits(
    template: dict[str, Any],
) -> None:
    properties, definition = _rescore_definition(template)
    plan = definition["States"]["Plan"]
    assert plan["Parameters"]["limits"] == {
        "max_concurrency": "MaxConcurrency",
        "tolerated_failure_percentage": "ToleratedFailurePercentage",
    }
    substitutions = properties["DefinitionSubstitutions"]
    assert substitutions["MaxConcurrency"] == {"Ref": "RescoreMaxConcurrency"}
    assert substitutions["ToleratedFailurePercentage"] == {"Ref": "RescoreToleratedFailurePercentage"}
    mapped = definition["States"][plan["Next"]]
    assert mapped["Type"] == "Map" and mapped["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert mapped["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "DropBucket", "Prefix.$": "$.prefix"},
    }
    assert mapped["MaxConcurrencyPath"] == "$.limits.max_concurrency"
    assert mapped["ToleratedFailurePercentagePath"] == "$.limits.tolerated_failure_percentage"
    assert mapped["ResultWriter"]["Parameters"] == {"Bucket": "DropBucket", "Prefix": "ReportPrefix"}
    # Each item is one listed object in the shape the batch handler parses (meaa_batch.events).
    assert mapped["ItemSelector"] == {
        "source": RESCORE_SOURCE,
        "bucket": "DropBucket",
        "object.$": "$$.Map.Item.Value",
        "since.$": "$.since",
    }
    (task,) = mapped["ItemProcessor"]["States"].values()
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"]["FunctionName"] == "BatchFunctionArn"
    assert "Lambda.TooManyRequestsException" in task["Retry"][0]["ErrorEquals"]  # throttled by uploads: wait
    # The map's concurrency stays below the batch function's reserved concurrency: uploads keep being scored.
    parameters = template["Parameters"]
    assert parameters["RescoreMaxConcurrency"]["Default"] < parameters["BatchReservedConcurrency"]["Default"]
    assert 0 <= parameters["RescoreToleratedFailurePercentage"]["Default"] <= 100
    assert template["Outputs"]["RescoreStateMachineArn"]["Value"] == {"Ref": "RescoreStateMachine"}
    group = template["Resources"]["RescoreLogGroup"]["Properties"]
    assert properties["Logging"]["IncludeExecutionData"] is False  # execution data holds keys (subject ids)
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
