"""Admin routes: add, replace and remove items known only by their text.

Guarded by admin tokens (:mod:`fedrec.server.api.auth`, sent as ``X-Admin-Token``), checked
before the body is read: a caller without one learns nothing about the body's schema. With
no token configured the routes answer 403. Every change is appended to the run's journal
(:mod:`fedrec.server.api.added_items`) and replayed at start-up, so a restart keeps it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, Security
from fastapi.security import APIKeyHeader

from fedrec.server.api.auth import AdminTokens
from fedrec.server.api.deps import HolderDep, SettingsDep, served_model
from fedrec.server.api.errors import ApiError, unknown_items
from fedrec.server.api.genres import canonical_genres, genre_vocabulary
from fedrec.server.api.openapi import problems
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import (
    ITEM_ID_PATTERN,
    MAX_ITEM_ID_CHARS,
    ItemFields,
    NewItemRequest,
    ReloadPublic,
    ScoredItemPublic,
)
from fedrec.server.api.settings import Settings
from fedrec.server.api.state import ModelHolder, ServedModel
from fedrec.server.serving import NewItem, NoTextTower, Recommender, TrainedItem, UnknownItems


def check_admin_token(request: Request, token: str | None) -> None:
    """403 when admin routes are off, 401 unless ``token`` is an admin token in force."""
    tokens: AdminTokens = request.app.state.admin_tokens
    tokens.check(token)


admin_token = APIKeyHeader(
    name="X-Admin-Token",
    scheme_name="AdminToken",
    description="An admin token (FEDREC_ADMIN_TOKEN or one of FEDREC_ADMIN_TOKENS_FILE); "
    "admin routes only.",
    auto_error=False,
)


def require_admin(request: Request, token: Annotated[str | None, Security(admin_token)]) -> None:
    """The admin check as a dependency: declares the security scheme in the schema."""
    check_admin_token(request, token)


class AdminRoute(ApiRoute):
    """A route that authenticates before it reads or validates the body."""

    def before_body(self, request: Request) -> None:
        """The admin token check, then the body's media type."""
        check_admin_token(request, request.headers.get("x-admin-token"))
        super().before_body(request)


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    route_class=AdminRoute,
    dependencies=[Depends(require_admin)],
    responses=problems(401, 403, pinned=False),
)

PathItemId = Annotated[
    str, Path(min_length=1, max_length=MAX_ITEM_ID_CHARS, pattern=ITEM_ID_PATTERN)
]


@contextmanager
def _writing(holder: ModelHolder) -> Iterator[ServedModel]:
    """The served model, held still: no reload swaps it while an admin change is made."""
    with holder.write_lock:
        yield served_model(holder, Response())


def _new_item(item_id: str, body: ItemFields, rec: Recommender, settings: Settings) -> NewItem:
    vocabulary = genre_vocabulary(rec.known_genres, settings.extra_genres)
    return NewItem(
        id=item_id,
        title=body.title,
        genres=tuple(canonical_genres(body.genres, vocabulary)),
        description=body.description,
    )


@router.post(
    "/items",
    status_code=201,
    operation_id="addItem",
    summary="Add a new item from its text",
    responses=problems(409, 415, 422, 503, pinned=False),
)
def add_item(body: NewItemRequest, holder: HolderDep, settings: SettingsDep) -> ScoredItemPublic:
    """Place a new item by its text; it is recommendable at once. Returns it with its bias."""
    with _writing(holder) as served:
        new = _new_item(body.id, body, served.recommender, settings)
        try:
            item = served.recommender.add_items([new])[0]
        except NoTextTower as err:
            raise ApiError(422, "text_not_supported", str(err)) from None
        except ValueError:
            raise ApiError(
                409, "item_exists", f"item id {body.id!r} is already in the catalogue"
            ) from None
        served.journal.put(body.model_copy(update={"genres": list(new.genres)}))
    return ScoredItemPublic(**vars(item))


@router.put(
    "/items/{item_id}",
    operation_id="replaceItem",
    responses=problems(404, 409, 415, 422, 503, pinned=False),
    summary="Replace an added item's text (and so its vector)",
)
def replace_item(
    item_id: PathItemId, body: ItemFields, holder: HolderDep, settings: SettingsDep
) -> ScoredItemPublic:
    """Re-place an admin-added item from new text; items of the trained model are refused."""
    with _writing(holder) as served:
        new = _new_item(item_id, body, served.recommender, settings)
        try:
            item = served.recommender.update_item(new)
        except UnknownItems as err:
            raise unknown_items(err) from None
        except TrainedItem as err:
            raise ApiError(409, "trained_item", str(err)) from None
        except NoTextTower as err:
            raise ApiError(422, "text_not_supported", str(err)) from None
        record = NewItemRequest(
            id=item_id, title=new.title, genres=list(new.genres), description=new.description
        )
        served.journal.put(record)
    return ScoredItemPublic(**vars(item))


@router.delete(
    "/items/{item_id}",
    status_code=204,
    operation_id="removeItem",
    summary="Remove an added item",
    responses=problems(404, 409, 422, 503, pinned=False),
    response_class=Response,
)
def remove_item(item_id: PathItemId, holder: HolderDep) -> Response:
    """Remove an admin-added item; items of the trained model are refused."""
    with _writing(holder) as served:
        try:
            served.recommender.remove_item(item_id)
        except UnknownItems as err:
            raise unknown_items(err) from None
        except TrainedItem as err:
            raise ApiError(409, "trained_item", str(err)) from None
        served.journal.delete(item_id)
    return Response(status_code=204)


@router.post(
    "/reload",
    operation_id="reloadModel",
    summary="Serve the newest checkpoint now",
    responses=problems(409, pinned=False),
)
def reload_model(holder: HolderDep) -> ReloadPublic:
    """Load the newest checkpoint under the model path beside the served one, then swap.

    Requests in flight finish on the old model. A checkpoint that does not load is refused
    (409) and the old model keeps serving.
    """
    result = holder.reload()
    if not result.reloaded and result.detail.startswith("reload refused"):
        raise ApiError(409, "reload_failed", result.detail)
    return ReloadPublic(
        reloaded=result.reloaded, model_version=result.model_version, detail=result.detail
    )
