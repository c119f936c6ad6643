"""API Gateway HTTP API (payload 2.0) events as the JWT authorizer delivers them, for the API's Lambda entry.

Behind a JWT authorizer, API Gateway verifies the token and passes its claims in
``requestContext.authorizer.jwt.claims``, every value as a string: a list claim such as ``cognito:groups``
becomes ``"[admins clinicians]"``, a number its decimal text (``render_claims``). The ``Authorization``
header still reaches the function, and any header a client invents does too: tests put forged ones there.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import urlencode

API_HOST = "abcdef1234.execute-api.eu-west-1.amazonaws.com"


def render_claim(value: Any) -> str:
    """One claim as API Gateway's JWT authorizer hands it to the integration."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(render_claim(item) for item in value) + "]"
    return str(value)


def render_claims(claims: dict[str, Any]) -> dict[str, str]:
    return {name: render_claim(value) for name, value in claims.items()}


def token_claims(sub: str, groups: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """The claims of a Cognito access token for ``sub`` (in ``groups``), before API Gateway renders them."""
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example",
        "client_id": "exampleclientid",
        "token_use": "access",
        "scope": "openid email",
        "auth_time": 1795672000,
        "exp": 1795675600,
        "iat": 1795672000,
        "username": sub,
        **extra,
    }
    if groups is not None:
        claims["cognito:groups"] = groups
    return claims


def http_event(
    method: str,
    path: str,
    *,
    claims: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    route_key: str = "$default",
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One request's event. ``claims`` are rendered as API Gateway renders them; ``authorizer`` replaces the
    whole ``requestContext.authorizer`` (for malformed contexts); neither: a request without an authorizer."""
    raw_query = urlencode(query or {})
    all_headers = {"host": API_HOST, "user-agent": "okhttp/4.12.0", "x-forwarded-proto": "https", **(headers or {})}
    body = None
    if json_body is not None:
        body = base64.b64encode(json.dumps(json_body).encode()).decode()
        all_headers["content-type"] = "application/json"
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "abcdef1234",
        "domainName": API_HOST,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "t"},
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": "$default",
        "time": "26/Nov/2026:06:00:00 +0000",
        "timeEpoch": 1795672800000,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    elif claims is not None:
        context["authorizer"] = {"jwt": {"claims": render_claims(claims), "scopes": None}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": all_headers,
        "requestContext": context,
        "isBase64Encoded": body is not None,
    }
    if query:
        event["queryStringParameters"] = {name: str(value) for name, value in query.items()}
    if body is not None:
        event["body"] = body
    return event


def answer(response: dict[str, Any]) -> tuple[int, Any]:
    """(status, JSON body or None) of the Lambda entry's answer."""
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], (json.loads(body) if body else None)
