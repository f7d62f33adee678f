"""Request and response bodies (pydantic)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ItemPublic(BaseModel):
    """An item of the catalogue."""

    id: str
    title: str
    genres: list[str]


class ScoredItemPublic(ItemPublic):
    """A recommended item with its score."""

    score: float
    because: str | None = Field(
        None, description="The liked item id whose factor agrees most with this one."
    )


class HealthPublic(BaseModel):
    """Liveness and which model is loaded."""

    status: str = Field(description="'ok', or 'no-model' when no checkpoint was found")
    model_version: str | None = None


class ModelPublic(BaseModel):
    """The served model: version, training metrics and its privacy guarantee."""

    model_version: str
    run_name: str
    round: int
    kind: str
    created_at: str
    n_items: int
    embedding_dim: int
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    privacy: dict[str, Any] | None = Field(
        description="Unit, epsilon, delta, mechanism and coverage; null when trained without DP"
    )


class ColdStartRequest(BaseModel):
    """A new user described by a few items they like."""

    liked_item_ids: list[str] = Field(min_length=1, examples=[["50", "172", "181"]])
    k: int | None = Field(None, ge=1, description="How many items (default 10, at most max_k)")
    exclude_item_ids: list[str] = Field(default_factory=list)


class RecommendationsPublic(BaseModel):
    """Recommended items, best first."""

    model_version: str
    items: list[ScoredItemPublic]


class SimilarPublic(BaseModel):
    """Items similar to one item, most similar first."""

    model_version: str
    item: ItemPublic
    items: list[ScoredItemPublic]
