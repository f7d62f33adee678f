"""The OpenAPI schema as the contract: every error documented, limits as configured.

Limits that depend on settings (the largest ``k``, how many liked items) are marked in
the models with ``x-fedrec-limit`` and filled in here from the settings the app runs
with, so the schema states the limits the service enforces.
"""

from __future__ import annotations

import http
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from fedrec.server.api.caching import is_cached
from fedrec.server.api.errors import PROBLEM_MEDIA_TYPE
from fedrec.server.api.schemas import Problem
from fedrec.server.api.settings import Settings

LIMIT_KEY = "x-fedrec-limit"
_REF = "#/components/schemas/"
# What each documented error status means on this service.
_WHEN = {
    400: "The body is not valid JSON (or not I-JSON: NaN, lone surrogates), or a bad header.",
    401: "Missing or wrong X-Admin-Token.",
    403: "Admin routes are disabled (FEDREC_ADMIN_TOKEN is unset).",
    404: "Unknown item id(s), listed.",
    409: "The item id is taken, or belongs to the trained model.",
    412: "X-Model-Version pins a version the service does not serve (now in X-Model-Version).",
    413: "The body is larger than FEDREC_MAX_BODY_BYTES.",
    415: "The body is not sent as Content-Type: application/json.",
    422: "The request is not valid; `errors` says where.",
    429: "Too many requests from this client; retry after Retry-After seconds.",
    431: "The headers are larger than FEDREC_MAX_HEADER_BYTES.",
    500: "The service failed; the error is logged under the request id.",
    503: "No model is loaded yet (or none was found).",
}
# Every route can answer these: the limits, rate limiting and a failure are route-blind.
COMMON = (400, 413, 429, 431, 500)


def problems(*statuses: int, pinned: bool = True) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering ``statuses`` (and :data:`COMMON`) as problem+json.

    A route that needs the model (503) can also be pinned to a version (412, 422 for a
    malformed pin).
    """
    if 503 in statuses and pinned:
        statuses = (*statuses, 412, 422)
    return {
        status: {
            "description": _WHEN.get(status, http.HTTPStatus(status).phrase),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF + "Problem"}}},
        }
        for status in sorted({*statuses, *COMMON})
    }


def limit(name: str) -> dict[str, str]:
    """``json_schema_extra`` marking a bound that comes from ``Settings.<name>``."""
    return {LIMIT_KEY: name}


def _set_limit(node: dict[str, Any], value: int) -> None:
    """Put the bound on ``node``, or on its branches of ``anyOf`` (``int | None``)."""
    for branch in node.get("anyOf", [node]):
        if branch.get("type") == "array":
            branch["maxItems"] = value
        elif branch.get("type") in ("integer", "number"):
            branch["maximum"] = value


def _fill_limits(node: Any, settings: Settings) -> None:
    if isinstance(node, dict):
        name = node.pop(LIMIT_KEY, None)
        if name is not None:
            _set_limit(node, getattr(settings, name))
        for value in node.values():
            _fill_limits(value, settings)
    elif isinstance(node, list):
        for value in node:
            _fill_limits(value, settings)


def _document_conditional_gets(schema: dict[str, Any]) -> None:
    """The 304 and If-None-Match of every GET :mod:`fedrec.server.api.caching` answers."""
    for path, item in schema.get("paths", {}).items():
        op = item.get("get")
        if op is None or not is_cached(path):
            continue
        op.setdefault("parameters", []).append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "The ETag of a copy held: 304 while it is current.",
                "schema": {"type": "string"},
            }
        )
        op["responses"]["304"] = {"description": "Not Modified: the copy held is current."}
        ok = op["responses"].get("200")
        if ok is not None:
            ok.setdefault("headers", {})["ETag"] = {
                "description": "The body's SHA-256 (for the item model, its content hash).",
                "schema": {"type": "string"},
            }


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` the contract: Problem in components, limits filled in."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template=_REF + "{model}")
            components.update(problem.pop("$defs", {}))
            components["Problem"] = problem
            _fill_limits(schema, settings)
            _document_conditional_gets(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
