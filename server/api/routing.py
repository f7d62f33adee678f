r"""Request parsing shared by every route: strict JSON, whole integers, admin auth first.

FastAPI parses a JSON body with :func:`json.loads`, which accepts ``NaN``, ``Infinity``
and lone UTF-16 surrogates (``"\ud800"``): none of them is I-JSON (RFC 7493), and each
later fails deep inside the service (a float that is not a number, a string that cannot
be encoded). Here they are refused up front with a 400.

Pydantic's lax mode reads a query string ``offset=0.0`` or ``k=2.0`` as an integer; the
schema says integer, so such a request is refused with the same 422 as any other invalid
parameter (else a precondition or an answer would be given to an invalid request).
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from fedrec.server.api.errors import ApiError

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def _is_integer(annotation: Any) -> bool:
    """Whether a parameter's type is ``int`` or an optional ``int``."""
    if annotation is int:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args == [int]
    return False


def integer_queries(route: APIRoute) -> tuple[str, ...]:
    """The names of a route's integer query parameters (its dependencies' included)."""
    return tuple(
        field.alias
        for field in get_flat_dependant(route.dependant).query_params
        if _is_integer(field.field_info.annotation)
    )


def whole_number_errors(names: tuple[str, ...], request: Request) -> list[dict[str, Any]]:
    """Validation errors for integer query parameters not written as whole numbers."""
    errors: list[dict[str, Any]] = []
    for name in names:
        for raw in request.query_params.getlist(name):
            if not _WHOLE_NUMBER.fullmatch(raw.strip()):
                errors.append(
                    {
                        "type": "int_parsing",
                        "loc": ("query", name),
                        "msg": "Input should be a whole number (digits only)",
                        "input": raw,
                    }
                )
    return errors


class InvalidJSON(ValueError):
    """Bytes that are not I-JSON: not UTF-8, not JSON, a non-finite number, a lone surrogate."""


def _not_a_number(name: str) -> None:
    raise InvalidJSON(f"the body holds {name}, which is not a JSON number")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise InvalidJSON(f"the number {literal[:40]} is out of range")
    return value


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``; :class:`InvalidJSON` unless it is I-JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJSON("the body is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_not_a_number, parse_float=_finite)
    except InvalidJSON:
        raise
    except json.JSONDecodeError as err:
        raise InvalidJSON(
            f"the body is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})"
        ) from None
    except RecursionError:
        raise InvalidJSON("the body is nested too deeply") from None
    except ValueError as err:  # e.g. an integer past Python's digit limit
        raise InvalidJSON(f"the body is not valid JSON: {err}") from None
    try:
        # Re-encoding finds any lone surrogate, in keys as in values, at C speed.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJSON("the body holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None
    except RecursionError:
        raise InvalidJSON("the body is nested too deeply") from None
    return value


def _is_json(content_type: str | None) -> bool:
    """Whether a Content-Type is JSON (``application/json`` or ``application/*+json``)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class StrictJSONRequest(Request):
    """A request whose :meth:`json` is :func:`parse_json`."""

    async def json(self) -> Any:
        """The body as strict JSON (cached, like Starlette's)."""
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json(await self.body())
            except InvalidJSON as err:
                raise ApiError(400, "invalid_json", str(err)) from None
        return self._json


class ApiRoute(APIRoute):
    """A route that parses its body with :func:`parse_json` and its integers strictly."""

    integer_queries: tuple[str, ...] = ()

    def before_body(self, request: Request) -> None:
        """Checks to run before the body is read or validated: whole integers, JSON body."""
        if errors := whole_number_errors(self.integer_queries, request):
            raise RequestValidationError(errors)
        if self.body_field is not None and not _is_json(request.headers.get("content-type")):
            raise ApiError(
                415, "unsupported_media_type", "send the body as Content-Type: application/json"
            )

    def get_route_handler(self) -> Handler:
        """FastAPI's handler, given a :class:`StrictJSONRequest`."""
        handler = super().get_route_handler()
        self.integer_queries = integer_queries(self)

        async def strict(request: Request) -> Response:
            self.before_body(request)
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
