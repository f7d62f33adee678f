"""Admin routes: add a new item from its text (recommendable at once).

Guarded by a shared token (``FEDREC_ADMIN_TOKEN``, sent as ``X-Admin-Token``); with no
token configured the routes answer 403. Added items are appended to
``added-items.jsonl`` in the run directory and replayed at start-up, so a restart keeps
them.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException

from fedrec.server.api.deps import CheckpointDep, RecommenderDep, SettingsDep
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import NewItemRequest, ScoredItemPublic
from fedrec.server.recommend import NoTextTower, Recommender
from fedrec.shared.checkpoint import Checkpoint

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=ApiRoute)

ADDED_ITEMS_FILE = "added-items.jsonl"


def added_items_path(ckpt: Checkpoint) -> Path:
    """Where a run's admin-added items are kept (beside its checkpoints)."""
    return ckpt.path.parent.parent / ADDED_ITEMS_FILE


def replay_added_items(rec: Recommender, ckpt: Checkpoint) -> int:
    """Re-add the items added to this run before a restart; returns how many."""
    path = added_items_path(ckpt)
    if not path.is_file() or not rec.has_text:
        return 0
    count = 0
    for line in path.read_text().splitlines():
        if line.strip():
            item = NewItemRequest.model_validate_json(line)
            if item.id not in rec.index_of:
                rec.add_item(item.id, item.title, item.genres, item.description)
                count += 1
    return count


def _check_token(settings: SettingsDep, token: str | None) -> None:
    if not settings.admin_token:
        raise HTTPException(
            status_code=403, detail="admin routes are disabled: set FEDREC_ADMIN_TOKEN to enable"
        )
    # Compared as bytes: a header is any latin-1 text (Starlette's decoding), which
    # compare_digest refuses on str once it is not ASCII.
    sent = token.encode("latin-1", errors="replace") if token is not None else b""
    if token is None or not hmac.compare_digest(sent, settings.admin_token.encode("utf-8")):
        raise HTTPException(status_code=401, detail="missing or wrong X-Admin-Token")


@router.post("/items", status_code=201, summary="Add a new item from its text")
def add_item(
    body: NewItemRequest,
    rec: RecommenderDep,
    ckpt: CheckpointDep,
    settings: SettingsDep,
    x_admin_token: Annotated[str | None, Header()] = None,
) -> ScoredItemPublic:
    """Place a new item by the item tower applied to its text; returns it with its bias."""
    _check_token(settings, x_admin_token)
    try:
        item = rec.add_item(body.id, body.title, body.genres, body.description)
    except NoTextTower as err:
        raise HTTPException(status_code=422, detail=str(err)) from None
    except ValueError as err:
        raise HTTPException(status_code=409, detail=str(err)) from None
    with added_items_path(ckpt).open("a") as handle:
        handle.write(json.dumps(body.model_dump()) + "\n")
    return ScoredItemPublic(**vars(item))
