"""Every error the API answers, in one format: RFC 9457 problem details with a stable code.

A client branches on ``code`` (listed in :data:`ErrorCode`, part of the OpenAPI schema);
``detail`` says what went wrong for a person and may change wording. Validation errors
carry ``errors`` (where and what, never the input: a refusal does not echo the request).
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from fedrec.server.api.schemas import MAX_CATALOGUE_ID_CHARS, ErrorCode, FieldError, Problem
from fedrec.server.serving import UnknownItems

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
# An error lists at most this many of the ids or fields it is about.
MAX_LISTED = 20
MAX_MESSAGE_CHARS = 300
MAX_DETAIL_CHARS = 2_000
# The code of an HTTPException raised by FastAPI or Starlette themselves, by status.
_DEFAULT_CODES: dict[int, ErrorCode] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "validation_error",
    429: "too_many_requests",
    431: "headers_too_large",
    503: "no_model",
}


class ApiError(HTTPException):
    """An HTTP error with a stable ``code`` clients can branch on (the text may change)."""

    def __init__(
        self,
        status_code: int,
        code: ErrorCode,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=dict(headers or {}))
        self.code: ErrorCode = code


def problem_body(
    status_code: int,
    code: ErrorCode,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    request_id: str | None = None,
) -> Problem:
    """The problem details of an error."""
    return Problem(
        type=f"urn:fedrec:problem:{code}",
        title=http.HTTPStatus(status_code).phrase,
        status=status_code,
        code=code,
        detail=detail[:MAX_DETAIL_CHARS],
        request_id=request_id,
        errors=errors or [],
    )


def problem(
    status_code: int,
    code: ErrorCode,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    """The problem+json response of an error."""
    body = Problem(
        type=f"urn:fedrec:problem:{code}",
        title=http.HTTPStatus(status_code).phrase,
        status=status_code,
        code=code,
        detail=detail[: MAX_MESSAGE_CHARS * 4],
        request_id=request_id,
        errors=errors or [],
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status_code,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    status_code: int, code: ErrorCode, detail: str, *, request_id: str | None = None
) -> JSONResponse:
    """The response for an error found outside a route (middleware)."""
    return problem(status_code, code, detail, request_id=request_id)


def unknown_items(err: UnknownItems) -> ApiError:
    """404 naming the unknown ids (the first :data:`MAX_LISTED`, then how many more)."""
    shown = [repr(i)[1:-1][:MAX_CATALOGUE_ID_CHARS] for i in err.ids[:MAX_LISTED]]
    more = len(err.ids) - len(shown)
    listed = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    return ApiError(404, "unknown_item", f"unknown item id(s): {listed}")


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.routes
        )
    ]


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = exc.code if isinstance(exc, ApiError) else _DEFAULT_CODES.get(exc.status_code)
    if code is None:
        code = "bad_request" if exc.status_code < 500 else "internal_error"
    detail = exc.detail if isinstance(exc.detail, str) else http.HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem(
        exc.status_code,
        code,
        detail,
        headers=headers,
        request_id=_request_id(request),
    )


def _field_error(error: Mapping[str, Any]) -> FieldError:
    return FieldError(
        loc=[p if isinstance(p, int) else str(p)[:MAX_CATALOGUE_ID_CHARS] for p in error["loc"]],
        msg=str(error["msg"])[:MAX_MESSAGE_CHARS],
        type=str(error["type"]),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    found = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in found):
        return problem(
            400, "invalid_json", "the body is not valid JSON", request_id=_request_id(request)
        )
    listed = [_field_error(e) for e in found[:MAX_LISTED]]
    where = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in listed[:3])
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return problem(
        422,
        "validation_error",
        f"the request is not valid: {where}{more}",
        errors=listed,
        request_id=_request_id(request),
    )


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    rid = _request_id(request)
    logger.error(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        rid,
        exc_info=exc,
    )
    # This answer is sent outside the middleware that tags the others: tag it here.
    return problem(
        500,
        "internal_error",
        "the service failed to answer; the error is logged under this request id",
        request_id=rid,
        headers={"X-Request-ID": rid} if rid else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error, FastAPI's and Starlette's own included, as problem+json."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
