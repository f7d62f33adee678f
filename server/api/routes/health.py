"""Liveness."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fedrec.server.api.openapi import problems
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import HealthPublic

router = APIRouter(tags=["health"], route_class=ApiRoute, responses=problems())


@router.get(
    "/health", operation_id="getHealth", summary="Is the service up, and which model does it serve?"
)
def health(request: Request) -> HealthPublic:
    """``ok`` with the model version, or ``no-model`` when no checkpoint was found."""
    ckpt = request.app.state.checkpoint
    if ckpt is None:
        return HealthPublic(status="no-model")
    return HealthPublic(status="ok", model_version=ckpt.model_version)
