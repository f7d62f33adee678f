"""ETags and conditional GETs for everything that changes only with the served model.

A 200 to a GET under ``/v1/`` gets a strong ETag (the SHA-256 of its body, unless the
route set one) and ``Cache-Control: no-cache``: a client may keep the answer but asks
again each time, and gets a bodiless 304 while its copy is current. Revalidating rather
than trusting an age is what a hot reload or an admin change needs: the ETag changes
the moment the answer would.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CACHE_CONTROL = "no-cache"


def is_cached(path: str) -> bool:
    """Whether GETs of ``path`` carry an ETag (the model's answers, not the probes)."""
    return path.startswith("/v1/")


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of an ``If-None-Match`` list against ``etag``."""
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))


class ConditionalGet:
    """ASGI middleware: ETag and Cache-Control on GETs, 304 for a current copy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, or buffer a GET's 200 to tag it (our answers are small)."""
        if scope["type"] != "http" or scope["method"] != "GET" or not is_cached(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    await send(message)
                    return
                start = message
                return
            if start is None:  # not a 200: already passed through
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._finish(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, buffered)

    @staticmethod
    async def _finish(scope: Scope, start: Message, body: bytes, send: Send) -> None:
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        etag = headers.get("etag") or f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers["ETag"] = etag
        headers.setdefault("Cache-Control", CACHE_CONTROL)
        if_none_match = Headers(scope=scope).get("if-none-match")
        if if_none_match is not None and _matches(if_none_match, etag):
            kept = MutableHeaders()
            for name in ("etag", "cache-control", "x-model-version", "x-request-id"):
                if name in headers:
                    kept[name] = headers[name]
            await send({"type": "http.response.start", "status": 304, "headers": kept.raw})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": body})
