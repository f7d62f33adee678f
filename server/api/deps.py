"""FastAPI dependencies as ``Annotated`` aliases.

The dependencies are ``async``: they only look things up, and FastAPI runs a plain ``def``
dependency in its thread pool, one hand-off there and back for each, on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Response

from fedrec.server.api.errors import ApiError
from fedrec.server.api.genres import genre_vocabulary
from fedrec.server.api.settings import Settings
from fedrec.server.api.state import ModelHolder, ServedModel
from fedrec.server.serving import Recommender
from fedrec.shared.checkpoint import Checkpoint


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_holder(request: Request) -> ModelHolder:
    """What holds the served model."""
    return request.app.state.holder  # type: ignore[no-any-return]


async def get_served(
    holder: Annotated[ModelHolder, Depends(get_holder)], response: Response
) -> ServedModel:
    """The model this request is answered with (taken once: a reload cannot change it).

    503 while it loads, or when there is none (:func:`served_model`).
    """
    return served_model(holder, response)


def served_model(holder: ModelHolder, response: Response) -> ServedModel:
    """The model served now, its version in ``response``'s headers.

    503 while it loads, or when there is none (saying how to produce one).
    """
    served = holder.served
    if served is not None:
        response.headers["X-Model-Version"] = served.version
        return served
    if holder.status == "loading":
        raise ApiError(
            503,
            "loading",
            "the model is still loading; retry shortly",
            headers={"Retry-After": "1"},
        )
    raise ApiError(
        503,
        "no_model",
        f"no model found under {holder.settings.model_path!r}: train one with "
        "`fedrec simulate` or `fedrec train-central`, then reload, restart or set "
        f"FEDREC_MODEL_PATH ({holder.error})",
    )


ServedDep = Annotated[ServedModel, Depends(get_served)]
ModelVersionPin = Annotated[
    str | None,
    Header(
        alias="X-Model-Version",
        max_length=200,
        description="Answer only from this model version (else 412): pins a client to one "
        "model across reloads.",
    ),
]


def check_pin(served: ServedModel, pin: str | None) -> None:
    """412 when the request pins another model version than the one served.

    Called by each route once its request is validated: a precondition counts only for a
    request that would otherwise succeed (RFC 9110, 13.2.1).
    """
    if pin is not None and pin != served.version:
        raise ApiError(
            412,
            "model_version_mismatch",
            f"the request pins model version {pin!r}; the service serves {served.version!r}",
            headers={"X-Model-Version": served.version},
        )


async def get_checkpoint(served: ServedDep) -> Checkpoint:
    """The served checkpoint."""
    return served.checkpoint


async def get_recommender(served: ServedDep) -> Recommender:
    """The serving model built from the checkpoint."""
    return served.recommender


SettingsDep = Annotated[Settings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
CheckpointDep = Annotated[Checkpoint, Depends(get_checkpoint)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]


async def get_genres(rec: RecommenderDep, settings: SettingsDep) -> dict[str, str]:
    """The genre vocabulary, lower-case to its spelling: the catalogue's, then the extra ones."""
    return genre_vocabulary(rec.known_genres, settings.extra_genres)


GenresDep = Annotated[dict[str, str], Depends(get_genres)]


def checked_k(k: int | None, settings: Settings) -> int:
    """``k``, or the default; 422 past ``max_k`` (the schema states it, this enforces it)."""
    if k is None:
        return min(settings.default_k, settings.max_k)
    if k > settings.max_k:
        raise ApiError(422, "validation_error", f"k must be at most {settings.max_k}")
    return k
