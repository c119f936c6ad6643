"""boto3 clients of both functions, with one retry and timeout policy (their owners keep them for the life of
the container); and the rule that tells a transient AWS error (Lambda should retry) from one that retrying
cannot fix."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, ReadTimeoutError

BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)

# Error codes that mean "try again later" whatever the HTTP status says.
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "TransactionInProgressException",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def s3_client() -> Any:
    return boto3.client("s3", config=BOTO_CONFIG)


# Presigned POSTs for phones: SigV4 (boto3 would otherwise sign a POST policy with SigV2, which S3 refuses in
# newer regions) and the bucket's regional virtual-hosted URL (https://<bucket>.s3.<region>.amazonaws.com/;
# an endpoint override such as moto's server gets its path-style URL instead).
SIGNING_CONFIG = BOTO_CONFIG.merge(
    Config(signature_version="s3v4", s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"})
)


def s3_signing_client() -> Any:
    return boto3.client("s3", config=SIGNING_CONFIG)


def dynamodb_table(name: str) -> Any:
    return boto3.resource("dynamodb", config=BOTO_CONFIG).Table(name)


def is_transient(error: BaseException) -> bool:
    """Throttling, 5xx and network timeouts: worth a retry. Anything else (4xx) will fail the same way again."""
    if isinstance(error, (ConnectionError, HTTPClientError, ReadTimeoutError)):
        return True
    if isinstance(error, ClientError):
        response = error.response
        code = (response.get("Error") or {}).get("Code", "")
        status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        return code in _TRANSIENT_CODES or status >= 500
    return False


def error_code(error: ClientError) -> str:
    return str((error.response.get("Error") or {}).get("Code", ""))
