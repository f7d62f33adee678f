"""Catalogue look-ups and similar items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from fedrec.server.api.deps import CheckpointDep, RecommenderDep, SettingsDep, checked_k
from fedrec.server.api.errors import unknown_items
from fedrec.server.api.openapi import limit, problems
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import (
    MAX_CATALOGUE_ID_CHARS,
    MAX_K_LIMIT,
    ItemPublic,
    ScoredItemPublic,
    SimilarPublic,
)
from fedrec.server.recommend import UnknownItems

router = APIRouter(
    prefix="/v1/items", tags=["items"], route_class=ApiRoute, responses=problems(404, 422, 503)
)


PathItemId = Annotated[str, Path(min_length=1, max_length=MAX_CATALOGUE_ID_CHARS)]


def _index(rec: RecommenderDep, item_id: str) -> int:
    try:
        return int(rec.indices([item_id])[0])
    except UnknownItems as err:
        raise unknown_items(err) from None


@router.get("/{item_id}", operation_id="getItem", summary="One item of the catalogue")
def get_item(item_id: PathItemId, rec: RecommenderDep) -> ItemPublic:
    """Id, title and genres of an item."""
    it = rec.item(_index(rec, item_id))
    return ItemPublic(id=it.id, title=it.title, genres=it.genres)


@router.get(
    "/{item_id}/similar", operation_id="getSimilarItems", summary="Items most similar to one item"
)
def similar(
    item_id: PathItemId,
    rec: RecommenderDep,
    ckpt: CheckpointDep,
    settings: SettingsDep,
    k: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_K_LIMIT,
            description="How many (default FEDREC_DEFAULT_K, at most FEDREC_MAX_K)",
            json_schema_extra=limit("max_k"),
        ),
    ] = None,
) -> SimilarPublic:
    """Nearest items by cosine similarity of the global item factors."""
    k = checked_k(k, settings)
    base = rec.item(_index(rec, item_id))
    items = rec.similar_items(item_id, k)
    return SimilarPublic(
        model_version=ckpt.model_version,
        item=ItemPublic(id=base.id, title=base.title, genres=base.genres),
        items=[ScoredItemPublic(**vars(i)) for i in items],
    )
