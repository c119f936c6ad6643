"""The API's Lambda entry point (template.yaml: ``meaa_api.lambda_handler.handler``).

Settings are read once at container start, the models are warmed up here (not in the first request's
latency), and Mangum turns API Gateway HTTP API events into ASGI requests. Powertools' logger adds the
Lambda context and API Gateway's request id (correlation id) to every log line. With SnapStart (the
template's default) this init runs when a version is published, and ``snapstart`` adds what runs before the
snapshot and after each restore.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from meaa.config import Settings

from . import snapstart
from .app import create_app
from .observability import LOGGER

# The HTTP API uses the $default stage, so paths arrive without a stage prefix.
API_GATEWAY_BASE_PATH = "/"

app = create_app(Settings.from_env())
app.state.meaa.warm_up()
_asgi_adapter = Mangum(app, lifespan="off", api_gateway_base_path=API_GATEWAY_BASE_PATH)
snapstart.register(app, _asgi_adapter)


@LOGGER.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _asgi_adapter(event, context)
