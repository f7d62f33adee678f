"""Recommendations for new (cold-start) users."""

from __future__ import annotations

from fastapi import APIRouter

from fedrec.server.api.deps import (
    CheckpointDep,
    GenresDep,
    RecommenderDep,
    SettingsDep,
    checked_k,
)
from fedrec.server.api.errors import ApiError, unknown_items
from fedrec.server.api.genres import canonical_genres
from fedrec.server.api.openapi import problems
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import ColdStartRequest, RecommendationsPublic, ScoredItemPublic
from fedrec.server.recommend import NoTextTower, UnknownItems

router = APIRouter(
    prefix="/v1/recommendations",
    tags=["recommendations"],
    route_class=ApiRoute,
    responses=problems(404, 422, 503),
)


@router.post(
    "/cold-start",
    operation_id="recommendColdStart",
    responses=problems(415),
    summary="Recommend for a new user given liked items and/or free text",
)
def cold_start(
    body: ColdStartRequest,
    rec: RecommenderDep,
    ckpt: CheckpointDep,
    settings: SettingsDep,
    vocabulary: GenresDep,
) -> RecommendationsPublic:
    """Top-k items for a user known only by liked items and/or how they describe themselves.

    Liked and excluded items are never returned; ``genres`` restricts the result to items
    of those genres.
    """
    k = checked_k(body.k, settings)
    if len(body.liked_item_ids) > settings.max_liked_items:
        raise ApiError(
            422,
            "validation_error",
            f"at most {settings.max_liked_items} liked items per request",
        )
    canonical_genres(body.genres, vocabulary)
    try:
        result = rec.cold_start(
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
    return RecommendationsPublic(
        model_version=ckpt.model_version,
        items=[ScoredItemPublic(**vars(i)) for i in result.items],
        warnings=result.warnings,
    )
