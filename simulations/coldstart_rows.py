"""The cold-start result's rows: what identifies each, and the label a report gives it.

:mod:`fedrec.simulations.bench_coldstart` writes every measured row as a flat dict: its
identity (``method``, and where they apply ``model``, ``given`` liked items or ``text``,
``draw``, ``weight`` and its ``grid``, ``fold_in_weight``, ``l2``, ``neighbours``) beside its
metrics. The renderer (:mod:`fedrec.simulations.reports.coldstart`) finds rows by those
fields and derives every label from them (:func:`user_label`, :func:`reference_label`,
:func:`item_label`); nothing is parsed back out of a label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

K = 10  # the cut-off of every metric (the result's protocol records it as k)

Row = dict[str, Any]

# The two federated models, as the result keys them and as a report names them.
MODEL_LABELS = {"mf": "MF only", "hybrid": "hybrid"}

# Draws of a held-out user's liked items for the centralized references: the first ones
# (the protocol of the served answers), some drawn at random, or a random half of all
# their items (the ceiling rows).
FIRST, RANDOM, CEILING = "first", "random", "ceiling"

_USER_METHODS = {
    (None, "popularity"): "popularity",
    ("hybrid", "item-bias"): "hybrid: item bias alone (the model's learned popularity)",
    ("mf", "mean-of-liked"): "MF-only: mean of liked factors",
    ("mf", "fold-in"): "MF-only: fold-in",
    ("hybrid", "mean-of-liked"): "hybrid: mean of item vectors",
    ("hybrid", "user-head"): "hybrid: user tower only",
}
_REFERENCE_METHODS = {
    "popularity": "popularity",
    "item-knn": "item-kNN, cosine",
    "ease": "EASE",
    "item-knn-log-popularity": "item-kNN + log popularity",
    "genre-log-popularity": "genres named in the text + log popularity",
}
_ITEM_METHODS = {
    ("hybrid", "text-map", True): "hybrid, served: text map",
    ("hybrid", "item-head", True): "hybrid, served: item head",
    ("hybrid", "item-head", False): "hybrid: item head alone",
    ("mf", "text-map", False): "MF only: text map",
    (None, "content", False): "content only: frozen embeddings",
    (None, "random", False): "random",
}


def matches(row: Row, **identity: Any) -> bool:
    """Whether ``row`` has every field of ``identity`` (a field of ``None``: absent)."""
    return all(row.get(name) == value for name, value in identity.items())


def find(rows: Sequence[Row], **identity: Any) -> Row:
    """The one row with ``identity`` (``KeyError`` if none or several)."""
    found = [row for row in rows if matches(row, **identity)]
    if len(found) != 1:
        raise KeyError(f"{len(found)} rows match {identity}")
    return found[0]


def find_or_none(rows: Sequence[Row], **identity: Any) -> Row | None:
    """The first row with ``identity``, or ``None``."""
    return next((row for row in rows if matches(row, **identity)), None)


def _given(row: Row) -> str:
    """The input a row was given, as its label ends: ``" (3 liked)"``, ``" (text)"``, ``""``."""
    if row.get("given") is not None:
        return f" ({row['given']} liked)"
    return " (text)" if row.get("text") else ""


def _swept(row: Row) -> str:
    """``", λ 4 (best of 1/2/4 here)"`` for a row whose weight is the best of a sweep."""
    if row.get("grid") is None:
        return ""
    grid = "/".join(f"{w:g}" for w in row["grid"])
    return f", λ {row['weight']:g} (best of {grid} here)"


def user_label(row: Row) -> str:
    """A new-user row's label: ``"MF-only: fold-in (3 liked)"``."""
    model, method = row.get("model"), row["method"]
    if method == "served":
        if row.get("text"):
            return "hybrid, served (text only)"
        how = (
            f"then fold-in at weight {row['fold_in_weight']:g}"
            if row.get("fold_in_weight") is not None
            else "no fold-in (DP model)"
        )
        return f"hybrid, served: both, {how}{_given(row)}"
    if method == "fold-in-weight":
        return f"fold-in weight {row['weight']:g}{_given(row)}"
    if method == "text-neighbours":
        return f"hybrid: text -> {row['neighbours']} nearest item texts -> fold-in"
    return _USER_METHODS[(model, method)] + _given(row)


def reference_label(row: Row) -> str:
    """A centralized reference's label: ``"EASE, l2 500 (3 liked)"``."""
    method, draw = row["method"], row.get("draw", FIRST)
    name = _REFERENCE_METHODS[method]
    if draw == CEILING:
        return f"ceiling: {name} (half of the user's items known)"
    if method == "ease" and row.get("l2") is not None:
        name = f"{name}, l2 {row['l2']:g}"
    name += _swept(row)
    if draw == RANDOM:
        return f"{row['given']} liked at random: {name}"
    return name + _given(row)


def item_label(row: Row) -> str:
    """A new-item row's label: ``"hybrid, served: text map"``."""
    return _ITEM_METHODS[(row.get("model"), row["method"], bool(row.get("served")))]


def metrics_of(row: Row) -> dict[str, float]:
    """A row's metrics alone, without its identity."""
    return {k: v for k, v in row.items() if k in (f"ndcg@{K}", f"hr@{K}", "n_users")}


def is_text_map(row: Row) -> bool:
    """Whether an item row places new items by the ridge text map."""
    return bool(row["method"] == "text-map")


def reference_base(row: Row, refs: Sequence[Row]) -> Row:
    """The popularity row a centralized reference is a ratio against: its own draw's."""
    return find(refs, method="popularity", draw=row.get("draw", FIRST))


def ratio_to_popularity(refs: Sequence[Row], row: Row) -> float:
    """A centralized reference's NDCG@10 over its popularity row's (0 where that is 0)."""
    base = reference_base(row, refs)[f"ndcg@{K}"]
    return float(row[f"ndcg@{K}"] / base) if base > 0 else 0.0


def best_reference(
    refs: Sequence[Row], *, draw: str = FIRST, given: int | None = None, text: bool = False
) -> tuple[Row, float] | None:
    """The centralized reference (not a popularity row) with the highest ratio to popularity.

    Among the rows of ``draw`` given ``given`` liked items (or the ``text``; neither: every
    row of the draw).
    """
    rows = [
        (row, ratio_to_popularity(refs, row))
        for row in refs
        if row.get("draw", FIRST) == draw
        and row["method"] != "popularity"
        and (given is None or row.get("given") == given)
        and (not text or bool(row.get("text")))
    ]
    return max(rows, key=lambda rv: rv[1]) if rows else None


# The repeats' columns (one row a training run): key -> (title, kind); ``{given}`` is the
# goal's liked items. Kinds: a value, a difference (signed), a ratio (``x``).
REPEAT_COLUMNS: dict[str, tuple[str, str]] = {
    "warm_mf": ("warm MF only", "value"),
    "warm_hybrid": ("warm hybrid", "value"),
    "warm_diff": ("warm hybrid - MF only", "difference"),
    "new_user_liked": ("new user, {given} liked (x popularity)", "ratio"),
    "new_user_text": ("new user, text (x popularity)", "ratio"),
    "new_items": ("new items, text (x random)", "ratio"),
    "best_reference_liked": ("best reference, {given} liked (x popularity)", "ratio"),
    "best_reference_text": ("best reference, text (x popularity)", "ratio"),
}
