"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

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
        raise HTTPException(
            status_code=503,
            detail=(
                f"no model found under {request.app.state.settings.model_path!r}: train one with "
                "`fedrec simulate` or `fedrec train-central`, then restart or set FEDREC_MODEL_PATH"
            ),
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
