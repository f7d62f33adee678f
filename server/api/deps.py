"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request

from fedrec.server.api.errors import ApiError
from fedrec.server.api.settings import Settings
from fedrec.server.recommend import Recommender
from fedrec.shared.checkpoint import Checkpoint


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings  # type: ignore[no-any-return]


def get_checkpoint(request: Request) -> Checkpoint:
    """The loaded checkpoint, or 503 saying how to produce one."""
    ckpt = request.app.state.checkpoint
    if ckpt is None:
        raise ApiError(
            503,
            "no_model",
            f"no model found under {request.app.state.settings.model_path!r}: train one with "
            "`fedrec simulate` or `fedrec train-central`, then restart or set FEDREC_MODEL_PATH",
        )
    return ckpt  # type: ignore[no-any-return]


def get_recommender(
    request: Request, ckpt: Annotated[Checkpoint, Depends(get_checkpoint)]
) -> Recommender:
    """The serving model built from the checkpoint."""
    return request.app.state.recommender  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
CheckpointDep = Annotated[Checkpoint, Depends(get_checkpoint)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]


def get_genres(rec: RecommenderDep, settings: SettingsDep) -> dict[str, str]:
    """The genre vocabulary, lower-case to its spelling: the catalogue's, then the extra ones."""
    return genre_vocabulary(rec.known_genres, settings.extra_genres)


def genre_vocabulary(catalogue: Sequence[str], extra: Sequence[str]) -> dict[str, str]:
    """Lower-case genre to its first spelling among ``catalogue`` then ``extra``."""
    vocabulary: dict[str, str] = {}
    for genre in (*catalogue, *extra):
        vocabulary.setdefault(genre.lower(), genre)
    return vocabulary


def canonical_genres(genres: Sequence[str], vocabulary: dict[str, str]) -> list[str]:
    """``genres`` in the vocabulary's spelling, each once; 422 naming the unknown ones."""
    unknown = [g for g in genres if g.lower() not in vocabulary]
    if unknown:
        raise ApiError(
            422,
            "unknown_genre",
            f"unknown genre(s) {', '.join(unknown)}; known: {', '.join(vocabulary.values())}",
        )
    return list(dict.fromkeys(vocabulary[g.lower()] for g in genres))


GenresDep = Annotated[dict[str, str], Depends(get_genres)]


def checked_k(k: int | None, settings: Settings) -> int:
    """``k``, or the default; 422 past ``max_k`` (the schema states it, this enforces it)."""
    if k is None:
        return min(settings.default_k, settings.max_k)
    if k > settings.max_k:
        raise ApiError(422, "validation_error", f"k must be at most {settings.max_k}")
    return k
