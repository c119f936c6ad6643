"""MEAA's HTTP API: FastAPI, served by uvicorn locally and by Mangum in Lambda.

``app.create_app(settings)`` builds the application (it only wires middleware, error handlers and routers);
``lambda_handler.handler`` is the Lambda entry point (template.yaml's ApiFunction), the only place that warms
the models up at container start.
"""
