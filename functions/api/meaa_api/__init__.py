"""MEAA's HTTP API: FastAPI, served by uvicorn locally and by Mangum in Lambda.

``app.create_app(settings)`` builds the application (it only wires middleware, error handlers and routers);
``lambda_handler.handler`` is the Lambda entry point (template.yaml's ApiFunction), the only place that warms
the models up at container start (and, with SnapStart, primes the snapshot: ``snapstart``).
"""

import pydantic

# Pydantic builds each model's validators when its class is defined, unless told to wait for first use. Importing
# FastAPI defines its ~40 OpenAPI models, which only /openapi.json and /docs use: ~230 ms of a cold start here
# (issue 13's `python -X importtime`), now paid by the first /openapi.json instead (and before the snapshot with
# SnapStart). Set on pydantic's base before any model of this package or of FastAPI exists; models inherit it.
pydantic.BaseModel.model_config["defer_build"] = True
