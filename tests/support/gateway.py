"""API Gateway HTTP API (payload 2.0) events as the JWT authorizer delivers them, for the API's Lambda entry.

Behind a JWT authorizer, API Gateway verifies the token and passes its claims in
``requestContext.authorizer.jwt.claims``, every value as a string: a list claim such as ``cognito:groups``
becomes ``"[admins clinicians]"``, a number its decimal text (``render_claims``). The ``Authorization``
header still reaches the function, and any header a client invents does too: tests put forged ones there.
``LocalHttpApi`` serves the handler over HTTP the way the deployed HTTP API does (routes and authorizer from
template.yaml), for the browser test of the try-it page's token box.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

from devkit.lambda_loader import lambda_context

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


# ---------------------------------------------------------------- tokens and a local HTTP API in front of the handler


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT of ``claims`` (the emulator's stand-in for a user pool's RS256 tokens)."""
    signing_input = (
        f"{_b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64url(json.dumps(claims).encode())}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def verify_token(token: str, secret: bytes, issuer: str, audience: str, now: float | None = None) -> dict | None:
    """The claims of a token API Gateway's JWT authorizer would accept (signature, iss, aud or client_id,
    exp, nbf), else None."""
    try:
        header, payload, signature = token.split(".")
        expected = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if json.loads(_unb64url(header)).get("alg") != "HS256" or not hmac.compare_digest(
            expected, _unb64url(signature)
        ):
            return None
        claims = json.loads(_unb64url(payload))
    except (ValueError, TypeError):
        return None
    moment = time.time() if now is None else now
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    if claims.get("iss") != issuer or audience not in [*audiences, claims.get("client_id")]:
        return None
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= moment or claims.get("nbf", 0) > moment:
        return None
    return claims


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    jwt: bool


def template_routes(template: dict[str, Any], parameters: dict[str, str]) -> list[Route]:
    """The HTTP API's routes for ``parameters`` (conditions on AuthMode and EnableTryItPage evaluated)."""
    conditions = {
        "UseJwtAuth": parameters.get("AuthMode") == "jwt",
        "ServeTryItPage": parameters.get("EnableTryItPage") == "true",
    }
    routes = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::ApiGatewayV2::Route" or not conditions.get(resource.get("Condition"), True):
            continue
        properties = resource["Properties"]
        method, path = properties["RouteKey"].split(" ", 1)
        kind = properties["AuthorizationType"]
        if isinstance(kind, dict):  # !If [UseJwtAuth, JWT, NONE]
            condition, when_true, when_false = kind["Fn::If"]
            kind = when_true if conditions[condition] else when_false
        regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        routes.append(Route(method, re.compile(f"^{regex}$"), kind == "JWT"))
    return routes


class LocalHttpApi:
    """An HTTP server that does what API Gateway's HTTP API does in front of the function: routes from the
    template, the JWT authorizer on the routes that have it (401 ``{"message":"Unauthorized"}`` itself), the
    claims rendered into the payload 2.0 event, and the Lambda handler's answer back as HTTP. For the
    browser test: the try-it page's token box against the real handler, as deployed."""

    def __init__(self, handler: Any, routes: list[Route], secret: bytes, issuer: str, audience: str) -> None:
        self.handler, self.routes = handler, routes
        self.secret, self.issuer, self.audience = secret, issuer, audience
        self._server: ThreadingHTTPServer | None = None

    def respond(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        path, _, query = raw_path.partition("?")
        route = next((r for r in self.routes if r.method == method and r.pattern.match(path)), None)
        if route is None:
            return 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'
        claims = None
        if route.jwt:
            token = headers.get("authorization", "").removeprefix("Bearer ").strip()
            claims = verify_token(token, self.secret, self.issuer, self.audience) if token else None
            if claims is None:
                return 401, {"content-type": "application/json"}, b'{"message":"Unauthorized"}'
        event = http_event(method, path, claims=claims, headers=headers)
        event["rawQueryString"] = query
        if body:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        asyncio.set_event_loop(asyncio.new_event_loop())  # Mangum runs the app on this thread's loop
        answer_ = self.handler(event, lambda_context("ApiFunction"))
        payload = answer_.get("body") or ""
        data = base64.b64decode(payload) if answer_.get("isBase64Encoded") else payload.encode()
        return answer_["statusCode"], dict(answer_.get("headers") or {}), data

    def start(self) -> str:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, answer_headers, data = api.respond(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in answer_headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:  # quiet: the function logs each request itself
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
