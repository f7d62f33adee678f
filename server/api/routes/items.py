"""Catalogue look-ups and similar items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from fedrec.server.api.deps import CheckpointDep, RecommenderDep, SettingsDep
from fedrec.server.api.errors import unknown_items
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import (
    MAX_CATALOGUE_ID_CHARS,
    ItemPublic,
    ScoredItemPublic,
    SimilarPublic,
)
from fedrec.server.recommend import UnknownItems

router = APIRouter(prefix="/v1/items", tags=["items"], route_class=ApiRoute)


PathItemId = Annotated[str, Path(min_length=1, max_length=MAX_CATALOGUE_ID_CHARS)]


def _index(rec: RecommenderDep, item_id: str) -> int:
    try:
        return int(rec.indices([item_id])[0])
    except UnknownItems as err:
        raise unknown_items(err) from None


@router.get("/{item_id}", summary="One item of the catalogue")
def get_item(item_id: PathItemId, rec: RecommenderDep) -> ItemPublic:
    """Id, title and genres of an item."""
    it = rec.item(_index(rec, item_id))
    return ItemPublic(id=it.id, title=it.title, genres=it.genres)


@router.get("/{item_id}/similar", summary="Items most similar to one item")
def similar(
    item_id: PathItemId,
    rec: RecommenderDep,
    ckpt: CheckpointDep,
    settings: SettingsDep,
    k: Annotated[int | None, Query(ge=1, description="How many (default 10)")] = None,
) -> SimilarPublic:
    """Nearest items by cosine similarity of the global item factors."""
    k = k or min(settings.default_k, settings.max_k)
    if k > settings.max_k:
        raise HTTPException(status_code=422, detail=f"k must be at most {settings.max_k}")
    base = rec.item(_index(rec, item_id))
    items = rec.similar_items(item_id, k)
    return SimilarPublic(
        model_version=ckpt.model_version,
        item=ItemPublic(id=base.id, title=base.title, genres=base.genres),
        items=[ScoredItemPublic(**vars(i)) for i in items],
    )
