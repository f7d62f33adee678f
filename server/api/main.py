"""The FastAPI application: the model is loaded in ``lifespan``, never at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from fedrec import __version__
from fedrec.server.api.auth import AdminTokens
from fedrec.server.api.caching import ConditionalGet
from fedrec.server.api.errors import install_error_handlers
from fedrec.server.api.limits import RequestLimits
from fedrec.server.api.observability import Metrics, Observability
from fedrec.server.api.openapi import install_openapi
from fedrec.server.api.ratelimit import RateLimit
from fedrec.server.api.routes import admin, health, item_model, items, model, recommendations
from fedrec.server.api.routes import metrics as metrics_route
from fedrec.server.api.routes.docs import install_docs
from fedrec.server.api.settings import Settings
from fedrec.server.api.signing import load_signing_key
from fedrec.server.api.state import ModelHolder
from fedrec.server.serving.threads import limit_compute_threads

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; with no checkpoint it still starts and model routes answer 503."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder = ModelHolder(settings)
        app.state.holder = holder
        metrics.watch(holder)

        # The first load is all the process does (encoding added items' texts, say): it
        # runs on every core, and requests get their per-operation limit once it is done.
        def limit() -> None:
            limit_compute_threads(settings.compute_threads)

        if settings.load_in_background:
            holder.start(then=limit)  # the port opens now; /ready says when the model serves
        else:
            await anyio.to_thread.run_sync(holder.load)
            limit()
        if settings.reload_interval_s > 0:
            holder.watch(settings.reload_interval_s)
        try:
            yield
        finally:
            holder.stop()

    app = FastAPI(
        title="fedrec",
        version=__version__,
        summary="Recommendations from a federated, differentially private model.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.holder = ModelHolder(settings)  # replaced at start-up; "loading" until then
    app.state.signing_key = load_signing_key(settings.signing_key_path)
    app.state.admin_tokens = AdminTokens(settings.admin_token, settings.admin_tokens_file)
    metrics = app.state.metrics = Metrics()
    metrics.watch(app.state.holder)
    for module in (health, model, items, item_model, recommendations, admin, metrics_route):
        app.include_router(module.router)
    install_docs(app)
    install_error_handlers(app)
    install_openapi(app, settings)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
    )
    app.add_middleware(ConditionalGet)
    if settings.rate_limit_per_minute:
        burst = settings.rate_limit_burst or max(1, settings.rate_limit_per_minute // 10)
        app.add_middleware(RateLimit, per_minute=settings.rate_limit_per_minute, burst=burst)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=[
                "Content-Type",
                "If-None-Match",
                "X-Admin-Token",
                "X-Model-Version",
                "X-Request-ID",
            ],
            expose_headers=["ETag", "Retry-After", "X-Model-Version", "X-Request-ID"],
            max_age=600,
        )
    # Outermost: every answer, the limits' refusals included, is counted and tagged.
    app.add_middleware(Observability, metrics=metrics)
    return app


def serve(settings: Settings) -> None:
    """Run the service with uvicorn until interrupted."""
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        ws="none",
        access_log=False,  # the app logs each request itself, with its request id
    )
