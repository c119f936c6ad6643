"""``GET /health``: liveness and model state; never loads models."""

from __future__ import annotations

import platform
from typing import Any

from fastapi import APIRouter, Depends

from .. import schemas
from ..dependencies import AppState, app_state

router = APIRouter()


@router.get("/health", response_model=schemas.HealthResponse, summary="Liveness and model state (never loads models)")
async def health(state: AppState = Depends(app_state)) -> dict[str, Any]:
    return {
        "status": "ok",
        "models_loaded": state.models_loaded,
        "model_version": state.model_version,
        "python_version": platform.python_version(),
        "max_upload_image_bytes": state.settings.max_upload_image_bytes,
        "max_image_bytes": state.settings.max_upload_image_bytes,  # the same, under its old name
    }
