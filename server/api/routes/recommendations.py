"""Recommendations for new (cold-start) users: one at a time, or a batch in one call."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter

from fedrec.server.api.deps import (
    CheckpointDep,
    GenresDep,
    ModelVersionPin,
    RecommenderDep,
    ServedDep,
    SettingsDep,
    check_pin,
    checked_k,
)
from fedrec.server.api.errors import ApiError, problem_body, unknown_items
from fedrec.server.api.genres import canonical_genres
from fedrec.server.api.openapi import problems
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import (
    BatchColdStartRequest,
    BatchEntryPublic,
    BatchRecommendationsPublic,
    ColdStartRequest,
    RecommendationsPublic,
    ScoredItemPublic,
)
from fedrec.server.api.settings import Settings
from fedrec.server.serving import ColdStartResult, NoTextTower, Recommender, UnknownItems

router = APIRouter(
    prefix="/v1/recommendations",
    tags=["recommendations"],
    route_class=ApiRoute,
    responses=problems(415, 422, 503),
)


def _check_limits(body: ColdStartRequest, settings: Settings) -> int:
    """``k`` of a request; 422 past the limits the schema states (k, liked items)."""
    if len(body.liked_item_ids) > settings.max_liked_items:
        raise ApiError(
            422,
            "validation_error",
            f"at most {settings.max_liked_items} liked items per request",
        )
    return checked_k(body.k, settings)


def _recommend(
    body: ColdStartRequest, rec: Recommender, settings: Settings, vocabulary: dict[str, str]
) -> ColdStartResult:
    """The answer to one request, or the :class:`ApiError` refusing it."""
    k = _check_limits(body, settings)
    canonical_genres(body.genres, vocabulary)
    try:
        return rec.cold_start(
            body.liked_item_ids,
            k,
            exclude=body.exclude_item_ids,
            text=body.text,
            genres=body.genres,
        )
    except UnknownItems as err:
        raise unknown_items(err) from None
    except NoTextTower as err:
        raise ApiError(422, "text_not_supported", str(err)) from None


@router.post(
    "/cold-start",
    operation_id="recommendColdStart",
    summary="Recommend for a new user given liked items and/or free text",
    responses=problems(404),
)
async def cold_start(
    body: ColdStartRequest,
    rec: RecommenderDep,
    ckpt: CheckpointDep,
    settings: SettingsDep,
    vocabulary: GenresDep,
    served: ServedDep,
    pin: ModelVersionPin = None,
) -> RecommendationsPublic:
    """Top-k items for a user known only by liked items and/or how they describe themselves.

    Liked and excluded items are never returned; ``genres`` restricts the result to items
    of those genres.
    """
    _check_limits(body, settings)
    check_pin(served, pin)
    # The model's work in a worker thread, the rest here: a sync route would also hand its
    # answer's validation to the thread pool, a second trip there and back.
    result = await anyio.to_thread.run_sync(_recommend, body, rec, settings, vocabulary)
    return RecommendationsPublic(
        model_version=ckpt.model_version,
        items=[ScoredItemPublic(**vars(i)) for i in result.items],
        warnings=result.warnings,
    )


@router.post(
    "/cold-start/batch",
    operation_id="recommendColdStartBatch",
    summary="Cold-start recommendations for several new users in one call",
)
async def cold_start_batch(
    body: BatchColdStartRequest,
    rec: RecommenderDep,
    ckpt: CheckpointDep,
    settings: SettingsDep,
    vocabulary: GenresDep,
    served: ServedDep,
    pin: ModelVersionPin = None,
) -> BatchRecommendationsPublic:
    """One answer per request, in order, all from the same model version.

    A request refused on its own (an unknown item, an unknown genre) gets its ``error``
    and does not fail the others; a body that does not match the schema is a 422 whole.
    """
    if len(body.requests) > settings.max_batch:
        raise ApiError(422, "validation_error", f"at most {settings.max_batch} requests a batch")
    for one in body.requests:  # past a schema limit, the body is invalid as a whole
        _check_limits(one, settings)
    check_pin(served, pin)
    results = await anyio.to_thread.run_sync(_answer_each, body, rec, settings, vocabulary)
    return BatchRecommendationsPublic(model_version=ckpt.model_version, results=results)


def _answer_each(
    body: BatchColdStartRequest, rec: Recommender, settings: Settings, vocabulary: dict[str, str]
) -> list[BatchEntryPublic]:
    """Each request's answer, or its own error."""
    results = []
    for one in body.requests:
        try:
            result = _recommend(one, rec, settings, vocabulary)
        except ApiError as err:
            error = problem_body(err.status_code, err.code, str(err.detail))
            results.append(BatchEntryPublic(error=error))
            continue
        results.append(
            BatchEntryPublic(
                items=[ScoredItemPublic(**vars(i)) for i in result.items],
                warnings=result.warnings,
            )
        )
    return results
