"""template.yaml's security options, checked on the SAM-transformed template for each parameter set.

Customer-managed keys (none by default, ``CreateKmsKey=true``, or ``KmsKeyArn``): which resources use the key,
who may use it (key policy and the roles' IAM policies), and nothing of it without a key. The drop bucket's
access logs and their bucket. Reserved concurrency of both functions. README, "Security and patient data".
"""

from __future__ import annotations

from typing import Any

import pytest

from devkit.lambda_loader import REPO_ROOT
from tests.support.sam_template import TemplateResolver, transformed_template

OWN_KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CREATED = {"Fn::GetAtt": ["MeaaKey", "Arn"]}
GIVEN = {"Ref": "KmsKeyArn"}
CRYPTO_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt", "kms:*")
# Every resource that holds patient data or names subjects, and where it names its key.
KEYED = {
    "ResultsTable": ("SSESpecification", "KMSMasterKeyId"),
    "IdempotencyTable": ("SSESpecification", "KMSMasterKeyId"),
    "AssignmentsTable": ("SSESpecification", "KMSMasterKeyId"),
    "BatchFailureQueue": ("KmsMasterKeyId",),
    "AlarmTopic": ("KmsMasterKeyId",),
}


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    return transformed_template()


def _resources(template: dict[str, Any], **parameters: str) -> dict[str, dict[str, Any]]:
    return TemplateResolver(template, AlarmEmail="oncall@example.org", **parameters).resources()


def _log_groups(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _key_of(resource: dict[str, Any], path: tuple[str, ...]) -> Any:
    node = resource["Properties"]
    for part in path:
        node = node.get(part, {})
    return node or None


def _drop_bucket_key(resources: dict[str, dict[str, Any]]) -> tuple[str, Any]:
    (rule,) = resources["DropBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["BucketKeyEnabled"] is True
    default = rule["ServerSideEncryptionByDefault"]
    return default["SSEAlgorithm"], default.get("KMSMasterKeyID")


def _kms_statements(resources: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM statement (roles' inline policies and AWS::IAM::Policy) that grants a kms: action."""
    found = []
    for name, resource in resources.items():
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in resource["Properties"].get("Policies", [])]
        elif resource["Type"] == "AWS::IAM::Policy":
            documents = [resource["Properties"]["PolicyDocument"]]
        for document in documents:
            for statement in _statements(document):
                if any(action.startswith("kms:") for action in _listed(statement["Action"])):
                    found.append((name, statement))
    return found


def test_without_a_key_everything_uses_aws_keys_and_no_role_touches_kms(transformed: dict[str, Any]) -> None:
    resources = _resources(transformed)
    assert not {name for name in resources if name.startswith(("MeaaKey", "KmsKeyUse"))}
    for name, path in KEYED.items():
        assert _key_of(resources[name], path) is None, name
    for name in ("ResultsTable", "IdempotencyTable", "AssignmentsTable"):
        assert resources[name]["Properties"]["SSESpecification"] == {"SSEEnabled": True}  # AWS-owned key
    assert resources["BatchFailureQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    assert _drop_bucket_key(resources) == ("AES256", None)
    for name, group in _log_groups(resources).items():
        assert "KmsKeyId" not in group, name
    assert _kms_statements(resources) == []


@pytest.mark.parametrize(("parameters", "key"), [({"CreateKmsKey": "true"}, CREATED), ({"KmsKeyArn": OWN_KEY}, GIVEN)])
def test_with_a_key_every_store_of_patient_data_uses_it(
    transformed: dict[str, Any], parameters: dict[str, str], key: dict[str, Any]
) -> None:
    resources = _resources(transformed, **parameters)
    assert ("MeaaKey" in resources) is (key == CREATED)
    for name, path in KEYED.items():
        assert _key_of(resources[name], path) == key, name
    for name in ("ResultsTable", "IdempotencyTable", "AssignmentsTable"):
        assert resources[name]["Properties"]["SSESpecification"]["SSEType"] == "KMS"
    assert "SqsManagedSseEnabled" not in resources["BatchFailureQueue"]["Properties"]  # exclusive with a key
    assert _drop_bucket_key(resources) == ("aws:kms", key)
    groups = _log_groups(resources)
    assert {"ApiLogGroup", "BatchLogGroup", "ApiAccessLogGroup", "RescoreLogGroup"} <= set(groups)
    for name, group in groups.items():
        assert group["KmsKeyId"] == key, name


def test_created_key_rotates_outlives_the_stack_and_has_an_alias(transformed: dict[str, Any]) -> None:
    key = _resources(transformed, CreateKmsKey="true")["MeaaKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"  # ResultsTable is retained too
    alias = transformed["Resources"]["MeaaKeyAlias"]
    assert alias["Condition"] == "CreateKey" and alias["Properties"]["TargetKeyId"] == {"Ref": "MeaaKey"}


KEY_USERS = "arn:aws:iam::111122223333:role/ward-uploader,arn:aws:iam::111122223333:role/on-call"


def _key_policy(transformed: dict[str, Any], **parameters: str) -> dict[str, dict[str, Any]]:
    policy = _resources(transformed, CreateKmsKey="true", **parameters)["MeaaKey"]["Properties"]["KeyPolicy"]
    statements = {statement["Sid"]: statement for statement in _statements(policy)}
    assert len(statements) == len(_statements(policy)), "each statement has its own Sid"
    for statement in statements.values():
        assert statement["Effect"] == "Allow" and statement["Resource"] == "*"  # "*" = this key, in a key policy
    return statements


def test_key_policy_separates_administration_from_use(transformed: dict[str, Any]) -> None:
    statements = _key_policy(transformed, KmsKeyUserArns=KEY_USERS)
    account = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    for sid, statement in statements.items():
        actions = _listed(statement["Action"])
        crypto = [action for action in actions if action.startswith(CRYPTO_ACTIONS)]
        if statement["Principal"] == {"AWS": account} and crypto:
            # The account may use the key only for the principals a condition names, only through services.
            condition = statement["Condition"]
            assert "aws:PrincipalArn" in condition["ArnEquals"], sid
            assert condition["StringEquals"]["kms:ViaService"], sid
        assert "kms:*" not in actions, sid
        if sid != "DeployerCreatesDynamoDbGrants":
            assert "kms:CreateGrant" not in actions, sid  # a grant could hand the key to anyone
    admin = statements["AdministerButNeverUse"]
    assert admin["Principal"] == {"AWS": account}
    assert not [action for action in admin["Action"] if action.startswith(CRYPTO_ACTIONS)]
    grants = statements["DeployerCreatesDynamoDbGrants"]
    assert grants["Action"] == "kms:CreateGrant"
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_key_users_are_this_stacks_roles_and_the_named_roles(transformed: dict[str, Any]) -> None:
    assert "NamedKeyUsersThroughTheServices" not in _key_policy(transformed)  # nobody named: no statement
    statements = _key_policy(transformed, KmsKeyUserArns=KEY_USERS)
    roles = statements["StackRolesThroughTheirServices"]["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    stack_roles = ("ApiFunctionRole", "BatchFunctionRole", "RescoreStateMachineRole")
    assert roles == [{"Fn::GetAtt": [role, "Arn"]} for role in stack_roles]
    named = statements["NamedKeyUsersThroughTheServices"]["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    assert named == {"Ref": "KmsKeyUserArns"}
    for sid in ("StackRolesThroughTheirServices", "NamedKeyUsersThroughTheServices"):
        assert set(statements[sid]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"}
        services = {via["Fn::Sub"] for via in statements[sid]["Condition"]["StringEquals"]["kms:ViaService"]}
        assert services == {f"{service}.${{AWS::Region}}.amazonaws.com" for service in ("s3", "dynamodb", "sqs")}
    services = [
        statement["Principal"]["Service"] for statement in statements.values() if "Service" in statement["Principal"]
    ]
    assert services == [
        "dynamodb.amazonaws.com",
        {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"},
        "cloudwatch.amazonaws.com",
    ]


def test_logs_may_use_the_key_for_exactly_this_stacks_log_groups(transformed: dict[str, Any]) -> None:
    statement = _key_policy(transformed)["CloudWatchLogsForThisStacksLogGroups"]
    allowed = {arn["Fn::Sub"] for arn in statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]}
    prefix = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
    names = {group["LogGroupName"]["Fn::Sub"] for group in _log_groups(transformed["Resources"]).values()}
    assert allowed == {prefix + name for name in names}, "a log group without its key-policy entry cannot be written"


@pytest.mark.parametrize(("parameters", "key"), [({"CreateKmsKey": "true"}, CREATED), ({"KmsKeyArn": OWN_KEY}, GIVEN)])
def test_roles_get_exactly_the_kms_actions_they_need(
    transformed: dict[str, Any], parameters: dict[str, str], key: dict[str, Any]
) -> None:
    without_jwt = _resources(transformed, **parameters)
    assert "KmsKeyUseByApiFunction" not in without_jwt  # AuthMode=none: the API reads no data
    granted = {}
    for name, statement in _kms_statements(_resources(transformed, AuthMode="jwt", **parameters)):
        assert statement["Effect"] == "Allow" and statement["Resource"] == key, name
        via = {
            service["Fn::Sub"].split(".")[0]
            for service in _listed(statement["Condition"]["StringEquals"]["kms:ViaService"])
        }
        for action in _listed(statement["Action"]):
            granted.setdefault((name, action), set()).update(via)
    assert granted == {
        ("KmsKeyUseByBatchFunction", "kms:Decrypt"): {"s3", "dynamodb", "sqs"},  # read uploads, results, claims
        ("KmsKeyUseByBatchFunction", "kms:GenerateDataKey"): {"sqs"},  # send to the failure queue
        ("KmsKeyUseByApiFunction", "kms:Decrypt"): {"dynamodb"},  # results and assignments
        ("KmsKeyUseByApiFunction", "kms:GenerateDataKey"): {"s3"},  # direct uploads it signs
        ("KmsKeyUseByRescoreStateMachine", "kms:GenerateDataKey"): {"s3"},  # its reports
        ("KmsKeyUseByRescoreStateMachine", "kms:Decrypt"): {"s3"},  # multipart report uploads
    }
    policies = _resources(transformed, AuthMode="jwt", **parameters)
    assert policies["KmsKeyUseByBatchFunction"]["Properties"]["Roles"] == [{"Ref": "BatchFunctionRole"}]
    assert policies["KmsKeyUseByApiFunction"]["Properties"]["Roles"] == [{"Ref": "ApiFunctionRole"}]
    assert policies["KmsKeyUseByRescoreStateMachine"]["Properties"]["Roles"] == [{"Ref": "RescoreStateMachineRole"}]


# What a data action on a key-encrypted store asks of KMS, through which service (each service's documentation:
# S3 SSE-KMS reads decrypt and writes generate a data key; DynamoDB decrypts the table key for every caller;
# SQS SSE-KMS senders need both, receivers decrypt). Every S3 object, table and queue of the stack uses the key.
KMS_NEEDS = {
    "s3:GetObject": {("kms:Decrypt", "s3")},
    "s3:GetObjectVersion": {("kms:Decrypt", "s3")},
    "s3:PutObject": {("kms:GenerateDataKey", "s3")},
    "sqs:SendMessage": {("kms:GenerateDataKey", "sqs"), ("kms:Decrypt", "sqs")},
    "sqs:ReceiveMessage": {("kms:Decrypt", "sqs")},
}


def _role_statements(resources: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each IAM role's Allow statements: its inline policies and the AWS::IAM::Policy resources attached to it."""
    roles = {name: [] for name, resource in resources.items() if resource["Type"] == "AWS::IAM::Role"}
    for name, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                roles[name].extend(_statements(policy["PolicyDocument"]))
        elif resource["Type"] == "AWS::IAM::Policy":
            for role in resource["Properties"]["Roles"]:
                roles[role["Ref"]].extend(_statements(resource["Properties"]["PolicyDocument"]))
    return {name: [s for s in statements if s["Effect"] == "Allow"] for name, statements in roles.items()}


def _kms_needed_and_granted(statements: list[dict[str, Any]]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    needed, granted = set(), set()
    for statement in statements:
        for action in _listed(statement["Action"]):
            if action.startswith("dynamodb:"):
                needed.add(("kms:Decrypt", "dynamodb"))
            needed |= KMS_NEEDS.get(action, set())
            if action.startswith("kms:"):
                for via in _listed(statement["Condition"]["StringEquals"]["kms:ViaService"]):
                    granted.add((action, via["Fn::Sub"].split(".")[0]))
    return needed, granted


@pytest.mark.parametrize("auth_mode", ["none", "jwt"])
def test_every_role_that_touches_encrypted_data_may_use_the_key_for_it(
    transformed: dict[str, Any], auth_mode: str
) -> None:
    """Derived from the roles' data actions, so a permission added later without its KMS side fails here."""
    resources = _resources(transformed, CreateKmsKey="true", AuthMode=auth_mode)
    key_users = _key_policy(transformed)["StackRolesThroughTheirServices"]["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    for role, statements in _role_statements(resources).items():
        needed, granted = _kms_needed_and_granted(statements)
        assert needed <= granted, f"{role} lacks {needed - granted}"
        assert granted <= needed, f"{role} may use the key beyond its data actions: {granted - needed}"
        if needed:
            assert {"Fn::GetAtt": [role, "Arn"]} in key_users, f"the key policy does not name {role}"


def test_with_a_key_uploads_cannot_choose_another_encryption(transformed: dict[str, Any]) -> None:
    header = "s3:x-amz-server-side-encryption"
    denials = {
        statement["Sid"]: statement
        for statement in _resources(transformed, CreateKmsKey="true")["DropBucketPolicy"]["Properties"][
            "PolicyDocument"
        ]["Statement"]
    }
    assert set(denials) == {"DenyInsecureTransport", "DenyUploadsEncryptedWithAnotherKey", "DenyUploadsWithoutKms"}
    other_key = denials["DenyUploadsEncryptedWithAnotherKey"]["Condition"]
    assert other_key == {
        "Null": {f"{header}-aws-kms-key-id": "false"},
        "StringNotEquals": {f"{header}-aws-kms-key-id": CREATED},
    }
    assert denials["DenyUploadsWithoutKms"]["Condition"] == {
        "Null": {header: "false"},
        "StringNotEquals": {header: "aws:kms"},
    }
    for statement in denials.values():
        assert statement["Effect"] == "Deny" and statement["Principal"] == "*"


def test_one_key_choice_at_a_time(transformed: dict[str, Any]) -> None:
    (assertion,) = transformed["Rules"]["OneKmsKeyChoice"]["Assertions"]
    for parameters, allowed in (
        ({}, True),
        ({"CreateKmsKey": "true"}, True),
        ({"KmsKeyArn": OWN_KEY}, True),
        ({"CreateKmsKey": "true", "KmsKeyArn": OWN_KEY}, False),
    ):
        assert TemplateResolver(transformed, **parameters).truth(assertion["Assert"]) is allowed, parameters


# ---------------------------------------------------------------- access logs


def test_drop_bucket_access_is_logged_by_date_into_the_log_bucket(transformed: dict[str, Any]) -> None:
    logging = transformed["Resources"]["DropBucket"]["Properties"]["LoggingConfiguration"]
    assert logging == {
        "DestinationBucketName": {"Ref": "AccessLogBucket"},
        "LogFilePrefix": "drop-bucket/",
        "TargetObjectKeyFormat": {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}},
    }


def test_log_bucket_is_private_tls_only_kept_and_expires(transformed: dict[str, Any]) -> None:
    resources = _resources(transformed)
    bucket = resources["AccessLogBucket"]
    assert bucket["DeletionPolicy"] == "Retain"  # the audit trail outlives the stack
    properties = bucket["Properties"]
    assert (
        all(properties["PublicAccessBlockConfiguration"].values())
        and len(properties["PublicAccessBlockConfiguration"]) == 4
    )
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}  # what log delivery accepts
    rules = {rule["Id"]: rule for rule in properties["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireAccessLogs"]["ExpirationInDays"] == {"Ref": "AccessLogRetentionDays"}
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}


def test_only_s3_log_delivery_for_the_drop_bucket_may_write_the_logs(transformed: dict[str, Any]) -> None:
    policy = _resources(transformed)["AccessLogBucketPolicy"]["Properties"]
    statements = {statement["Sid"]: statement for statement in policy["PolicyDocument"]["Statement"]}
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (allow,) = [statement for statement in statements.values() if statement["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"} and allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == {"Fn::Sub": "${AccessLogBucket.Arn}/drop-bucket/*"}
    drop_bucket = transformed["Resources"]["DropBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{drop_bucket}"}
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


# ---------------------------------------------------------------- concurrency


@pytest.mark.parametrize(
    ("function", "parameter"),
    [("ApiFunction", "ApiReservedConcurrency"), ("BatchFunction", "BatchReservedConcurrency")],
)
def test_reserved_concurrency_is_a_parameter_and_minus_one_reserves_none(
    transformed: dict[str, Any], function: str, parameter: str
) -> None:
    reserved = _resources(transformed)[function]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {"Ref": parameter}
    assert "ReservedConcurrentExecutions" not in _resources(transformed, **{parameter: "-1"})[function]["Properties"]


def test_reserved_concurrency_defaults_fit_a_standard_account_and_the_api_throttle(transformed: dict[str, Any]) -> None:
    parameters = transformed["Parameters"]
    api, batch = (parameters[name]["Default"] for name in ("ApiReservedConcurrency", "BatchReservedConcurrency"))
    # Lambda keeps 100 executions unreserved: with the standard quota of 1000, reservations may total 900.
    assert 0 < api + batch <= 1000 - 100
    # API Gateway lets ThrottleBurstLimit requests in at once: a reservation below it would throttle a burst (5xx).
    assert api >= parameters["ThrottleBurstLimit"]["Default"]
    readme = (REPO_ROOT / "README.md").read_text()
    for name in ("ApiReservedConcurrency", "BatchReservedConcurrency", "CreateKmsKey", "KmsKeyArn", "KmsKeyUserArns"):
        assert f"`{name}`" in readme, f"README does not explain {name}"
