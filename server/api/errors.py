"""The API's errors: one exception type with a stable machine-readable ``code``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from fedrec.server.api.schemas import MAX_CATALOGUE_ID_CHARS
from fedrec.server.recommend import UnknownItems


class ApiError(HTTPException):
    """An HTTP error with a stable ``code`` clients can branch on (the text may change)."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=dict(headers or {}))
        self.code = code
        self.errors = errors or []


def error_response(status_code: int, code: str, detail: str) -> JSONResponse:
    """The response for an error raised outside a route (middleware)."""
    return JSONResponse({"detail": detail, "code": code}, status_code=status_code)


# An error lists at most this many of the ids it is about (the request may hold a thousand).
MAX_LISTED_IDS = 20


def unknown_items(err: UnknownItems) -> ApiError:
    """404 naming the unknown ids (the first :data:`MAX_LISTED_IDS`, then how many more)."""
    shown = [repr(i)[1:-1][:MAX_CATALOGUE_ID_CHARS] for i in err.ids[:MAX_LISTED_IDS]]
    more = len(err.ids) - len(shown)
    listed = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    return ApiError(404, "unknown_item", f"unknown item id(s): {listed}")
