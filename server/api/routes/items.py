"""The catalogue: pages of it, title search, one item, and similar items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

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
from fedrec.server.api.errors import unknown_items
from fedrec.server.api.genres import canonical_genres
from fedrec.server.api.openapi import limit, problems
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import (
    MAX_CATALOGUE_ID_CHARS,
    MAX_FILTER_GENRES,
    MAX_K_LIMIT,
    MAX_OFFSET,
    MAX_PAGE,
    ItemPagePublic,
    ItemPublic,
    ScoredItemPublic,
    SimilarPublic,
)
from fedrec.server.serving import ScoredItem, UnknownItems

router = APIRouter(
    prefix="/v1/items", tags=["items"], route_class=ApiRoute, responses=problems(422, 503)
)

PathItemId = Annotated[str, Path(min_length=1, max_length=MAX_CATALOGUE_ID_CHARS)]
GenreFilter = Annotated[
    list[str],
    Query(
        alias="genre",
        max_length=MAX_FILTER_GENRES,
        description="Only items of one of these genres (repeat the parameter for several).",
    ),
]
MAX_EXCLUDED = 100


def _lookup(rec: RecommenderDep, item_id: str) -> ScoredItem:
    try:
        return rec.lookup(item_id)
    except UnknownItems as err:
        raise unknown_items(err) from None


@router.get("", operation_id="listItems", summary="Pages of the catalogue, with title search")
def list_items(
    served: ServedDep,
    rec: RecommenderDep,
    ckpt: CheckpointDep,
    vocabulary: GenresDep,
    q: Annotated[
        str, Query(max_length=100, description="Only titles holding this text (any case).")
    ] = "",
    genres: GenreFilter = [],  # noqa: B006 - FastAPI copies defaults per request
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit_: Annotated[int, Query(alias="limit", ge=1, le=MAX_PAGE)] = 20,
    pin: ModelVersionPin = None,
) -> ItemPagePublic:
    """Items in catalogue order (trained ones first, then admin-added ones)."""
    check_pin(served, pin)
    found = rec.search(q, genres=canonical_genres(genres, vocabulary))
    page = found[offset : offset + limit_]
    end = offset + len(page)
    return ItemPagePublic(
        model_version=ckpt.model_version,
        total=len(found),
        offset=offset,
        limit=limit_,
        next_offset=end if end < len(found) else None,
        items=[ItemPublic(id=i.id, title=i.title, genres=i.genres) for i in page],
    )


@router.get(
    "/{item_id}",
    operation_id="getItem",
    summary="One item of the catalogue",
    responses=problems(404),
)
def get_item(
    item_id: PathItemId, rec: RecommenderDep, served: ServedDep, pin: ModelVersionPin = None
) -> ItemPublic:
    """Id, title and genres of an item."""
    check_pin(served, pin)
    it = _lookup(rec, item_id)
    return ItemPublic(id=it.id, title=it.title, genres=it.genres)


@router.get(
    "/{item_id}/similar",
    operation_id="getSimilarItems",
    summary="Items most similar to one item",
    responses=problems(404),
)
def similar(
    item_id: PathItemId,
    served: ServedDep,
    rec: RecommenderDep,
    ckpt: CheckpointDep,
    settings: SettingsDep,
    vocabulary: GenresDep,
    k: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_K_LIMIT,
            description="How many (default FEDREC_DEFAULT_K, at most FEDREC_MAX_K)",
            json_schema_extra=limit("max_k"),
        ),
    ] = None,
    offset: Annotated[
        int, Query(ge=0, le=MAX_K_LIMIT, description="Skip this many of the most similar.")
    ] = 0,
    genres: GenreFilter = [],  # noqa: B006 - FastAPI copies defaults per request
    exclude: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=MAX_CATALOGUE_ID_CHARS)]],
        Query(max_length=MAX_EXCLUDED, description="Item ids never to return (repeatable)."),
    ] = [],  # noqa: B006
    pin: ModelVersionPin = None,
) -> SimilarPublic:
    """Nearest items by cosine similarity of the global item factors."""
    k = checked_k(k, settings)
    check_pin(served, pin)
    base = _lookup(rec, item_id)
    try:
        items = rec.similar_items(
            item_id,
            k,
            offset=offset,
            exclude=exclude,
            genres=canonical_genres(genres, vocabulary),
        )
    except UnknownItems as err:
        raise unknown_items(err) from None
    return SimilarPublic(
        model_version=ckpt.model_version,
        item=ItemPublic(id=base.id, title=base.title, genres=base.genres),
        items=[ScoredItemPublic(**vars(i)) for i in items],
    )
