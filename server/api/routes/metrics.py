"""Prometheus metrics of the service."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fedrec.server.api.openapi import problems
from fedrec.server.api.routing import ApiRoute

router = APIRouter(tags=["operations"], route_class=ApiRoute, responses=problems())


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics: requests, latency by route, model version, reloads",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    """The Prometheus text format of this service's metrics."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
