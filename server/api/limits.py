"""Size limits on every request, enforced before any route sees it.

A body over ``max_body_bytes`` is refused with 413 (by its ``Content-Length`` when it has
one, without reading it; otherwise once the bytes read pass the limit), headers over
``max_header_bytes`` in all with 431. Bodies under the limit are buffered and handed on.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedrec.server.api.errors import error_response
from fedrec.server.api.schemas import ErrorCode


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, code: ErrorCode, detail: str
) -> None:
    rid = scope.get("state", {}).get("request_id")
    await error_response(status, code, detail, request_id=rid)(scope, receive, send)


class RequestLimits:
    """ASGI middleware: 413 for a body, 431 for headers past their limit."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the headers, then read and check the body, then call the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if sum(len(k) + len(v) for k, v in headers) > self.max_header_bytes:
            detail = f"the request headers exceed {self.max_header_bytes} bytes in all"
            await _refuse(scope, receive, send, 431, "headers_too_large", detail)
            return
        declared = [v for k, v in headers if k == b"content-length"]
        if declared:
            try:
                length = int(declared[0])
            except ValueError:
                length = -1
            if length < 0 or len(declared) > 1:
                detail = "the Content-Length header is not one non-negative integer"
                await _refuse(scope, receive, send, 400, "bad_request", detail)
                return
            if length > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body exceeds {self.max_body_bytes} bytes"
        await _refuse(scope, receive, send, 413, "payload_too_large", detail)
