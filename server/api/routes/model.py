"""The served model and its privacy guarantee."""

from __future__ import annotations

from fastapi import APIRouter

from fedrec.server.api.deps import (
    CheckpointDep,
    GenresDep,
    ModelVersionPin,
    RecommenderDep,
    ServedDep,
    check_pin,
)
from fedrec.server.api.openapi import problems
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import GenresPublic, ModelComponent, ModelPublic
from fedrec.server.serving.provenance import components

router = APIRouter(prefix="/v1", tags=["model"], route_class=ApiRoute, responses=problems(503))


@router.get(
    "/model",
    operation_id="getModel",
    summary="Version, metrics and privacy guarantee of the served model",
)
def model_info(
    ckpt: CheckpointDep, rec: RecommenderDep, served: ServedDep, pin: ModelVersionPin = None
) -> ModelPublic:
    """What is served: version, round, training metrics and each (ε, δ) with its unit.

    ``privacy`` is the record-level guarantee, ``user_privacy`` the user-level one.
    """
    check_pin(served, pin)
    m = ckpt.manifest
    return ModelPublic(
        model_version=ckpt.model_version,
        run_name=m["run_name"],
        round=ckpt.round,
        kind=m["kind"],
        created_at=m["created_at"],
        n_items=rec.n_items,
        embedding_dim=m["embedding_dim"],
        metrics=m.get("metrics", {}),
        history=m.get("history", []),
        privacy=m.get("privacy"),
        user_privacy=m.get("user_privacy"),
        components=[ModelComponent(**c) for c in components(m, ckpt.tensors)],
        cold_start_fold_in=rec.fold_in_enabled,
        cold_start_fold_in_weight=rec.fold_in_weight if rec.fold_in_enabled else None,
    )


@router.get("/genres", operation_id="listGenres", summary="The genres the service knows")
def genres(vocabulary: GenresDep, served: ServedDep, pin: ModelVersionPin = None) -> GenresPublic:
    """The genre vocabulary: the trained catalogue's, then FEDREC_EXTRA_GENRES."""
    check_pin(served, pin)
    return GenresPublic(genres=list(vocabulary.values()))
