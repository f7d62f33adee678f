"""The FastAPI application: the model is loaded in ``lifespan``, never at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from fedrec import __version__
from fedrec.server.api.added_items import EMBEDDINGS_FILE, Journal, journal_path
from fedrec.server.api.deps import genre_vocabulary
from fedrec.server.api.errors import install_error_handlers
from fedrec.server.api.limits import RequestLimits
from fedrec.server.api.openapi import install_openapi
from fedrec.server.api.routes import admin, health, items, model, recommendations
from fedrec.server.api.routes.docs import install_docs
from fedrec.server.api.settings import Settings
from fedrec.server.recommend import NewItem, Recommender
from fedrec.server.text_store import EmbeddingStore
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.device import resolve_device
from fedrec.shared.errors import CheckpointError

logger = logging.getLogger(__name__)


def replay_added_items(rec: Recommender, journal: Journal, settings: Settings) -> int:
    """Re-add the items an admin added to this run before a restart; returns how many."""
    if not rec.has_text:
        if journal.path.is_file():
            logger.warning("%s ignored: this model cannot place items from text", journal.path)
        return 0
    assert rec.towers is not None
    rec.embedding_store = EmbeddingStore(
        journal.path.with_name(EMBEDDINGS_FILE), max_length=rec.towers.item_encoder.max_length
    )
    vocabulary = genre_vocabulary(rec.known_genres, settings.extra_genres)
    items = []
    for item in journal.read(vocabulary=vocabulary):
        if item.id in rec.index_of:
            logger.warning(
                "%s: item %r skipped, the trained model has that id", journal.path, item.id
            )
            continue
        genres = tuple(dict.fromkeys(vocabulary[g.lower()] for g in item.genres))
        items.append(NewItem(item.id, item.title, genres, item.description))
    added = rec.add_items(items)
    rec.embedding_store.retain(rec.texts[rec.n_trained :])
    return len(added)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; with no checkpoint it still starts and model routes answer 503."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.checkpoint = None
        app.state.recommender = None
        app.state.journal = None
        try:
            ckpt = load_checkpoint(Path(settings.model_path))
        except CheckpointError as err:
            logger.warning("serving without a model: %s", err)
        else:
            app.state.checkpoint = ckpt
            rec = Recommender.from_checkpoint(
                ckpt,
                device=resolve_device(settings.device),
                fold_in_weight=settings.fold_in_weight,
            )
            if rec.towers is not None:
                rec.towers.max_length = settings.max_text_tokens
            journal = Journal(journal_path(ckpt))
            added = replay_added_items(rec, journal, settings)
            app.state.journal = journal
            app.state.recommender = rec
            logger.info(
                "serving %s from %s (%s; %d admin-added items)",
                ckpt.model_version,
                ckpt.path,
                "text towers" if rec.has_text else "MF only",
                added,
            )
        yield

    app = FastAPI(
        title="fedrec",
        version=__version__,
        summary="Recommendations from a federated, differentially private model.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.checkpoint = None
    app.state.recommender = None
    for module in (health, model, items, recommendations, admin):
        app.include_router(module.router)
    install_docs(app)
    install_error_handlers(app)
    install_openapi(app, settings)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
    )
    return app


def serve(settings: Settings) -> None:
    """Run the service with uvicorn until interrupted."""
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="info", ws="none"
    )
