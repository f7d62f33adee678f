"""Probes: liveness (the process answers) apart from readiness (a model answers too)."""

from __future__ import annotations

from fastapi import APIRouter

from fedrec.server.api.deps import HolderDep, ServedDep
from fedrec.server.api.openapi import problems
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import HealthPublic, ReadyPublic

router = APIRouter(tags=["health"], route_class=ApiRoute, responses=problems())


@router.get(
    "/health", operation_id="getHealth", summary="Liveness: is the process up, and what it serves"
)
def health(holder: HolderDep) -> HealthPublic:
    """Always 200 while the process runs.

    ``ok`` with the model version, ``loading`` while the model loads, ``no-model`` when no
    checkpoint was found.
    """
    served = holder.served
    if served is not None:
        return HealthPublic(status="ok", model_version=served.version)
    return HealthPublic(status=holder.status)


@router.get(
    "/ready",
    operation_id="getReady",
    summary="Readiness: does the service answer with a model",
    responses=problems(503, pinned=False),
)
def ready(served: ServedDep) -> ReadyPublic:
    """200 once a model serves; 503 (``loading`` or ``no_model``) until then."""
    return ReadyPublic(status="ready", model_version=served.version)
