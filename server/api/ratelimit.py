"""Per-client rate limiting: a token bucket per client address, 429 once it is empty.

Off unless ``FEDREC_RATE_LIMIT_PER_MINUTE`` is set. The probes and ``/metrics`` are never
limited (an orchestrator polling them must not lock itself out). The table of clients is
bounded: the least recently seen are forgotten first, so a flood of addresses cannot
grow it without end.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Receive, Scope, Send

from fedrec.server.api.errors import error_response

EXEMPT = ("/health", "/ready", "/metrics")
MAX_CLIENTS = 10_000


class TokenBuckets:
    """``rate`` tokens a second up to ``burst``, per key; each request takes one."""

    def __init__(self, *, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._now = time.monotonic

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = self._now()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return wait


class RateLimit:
    """ASGI middleware: 429 with ``Retry-After`` for a client past its rate."""

    def __init__(self, app: ASGIApp, *, per_minute: int, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_minute=per_minute, burst=burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the request through, or refuse it until the client's bucket refills."""
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "unknown")
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        response = error_response(
            429,
            "too_many_requests",
            f"too many requests from this client; retry in {math.ceil(wait)} s",
            request_id=scope.get("state", {}).get("request_id"),
        )
        response.headers["Retry-After"] = str(math.ceil(wait))
        await response(scope, receive, send)
