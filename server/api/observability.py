"""Request ids, Prometheus metrics and structured access logs, for every request.

Each request gets an id: the caller's ``X-Request-ID`` when it is a plausible one (so a
trace can cross services), else a fresh one. It is echoed in the response header, in
error bodies and in the access log line. Metrics are labelled by route template, never
by raw path: a scanner probing random URLs cannot grow the metric set.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedrec.server.api.state import ModelHolder

access_log = logging.getLogger("fedrec.access")

REQUEST_ID_HEADER = "X-Request-ID"
_PLAUSIBLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _ModelCollector(Collector):
    """The served model's version, readiness and reloads, read at scrape time."""

    def __init__(self, holder: ModelHolder) -> None:
        self.holder = holder

    def collect(self) -> Iterator[Metric]:
        served = self.holder.served
        info = GaugeMetricFamily(
            "fedrec_model_info", "The served model (value 1).", labels=["model_version"]
        )
        if served is not None:
            info.add_metric([served.version], 1.0)
        yield info
        yield GaugeMetricFamily(
            "fedrec_model_ready", "1 while a model serves.", value=float(served is not None)
        )
        if served is not None:
            yield GaugeMetricFamily(
                "fedrec_model_items", "Items served.", value=served.recommender.n_items
            )
        reloads = CounterMetricFamily(
            "fedrec_model_reloads", "Reload attempts by result.", labels=["result"]
        )
        for result, count in self.holder.reloads.items():
            reloads.add_metric([result], count)
        yield reloads


class Metrics:
    """The app's own registry (several apps in one process must not share counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fedrec_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fedrec_http_request_duration_seconds",
            "Time to answer, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._model: _ModelCollector | None = None

    def watch(self, holder: ModelHolder) -> None:
        """Report ``holder``'s model (replacing the one watched before)."""
        if self._model is not None:
            self.registry.unregister(self._model)
        self._model = _ModelCollector(holder)
        self.registry.register(self._model)


def request_id_of(scope: Scope) -> str:
    """The caller's plausible ``X-Request-ID``, or a new one."""
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            if _PLAUSIBLE_ID.match(text):
                return text
    return uuid.uuid4().hex


class Observability:
    """ASGI middleware: request id in and out, metrics and one access log line per request."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer through the app, timing it and tagging it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500  # unless the app starts a response
        start = time.perf_counter()

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            client = scope.get("client")
            access_log.info(
                json.dumps(
                    {
                        "request_id": rid,
                        "method": method,
                        "path": scope["path"][:256],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": client[0] if client else None,
                    }
                )
            )
