"""Placing a new item from its text: a ridge map from text embeddings to the item table.

The global model's trained items give pairs (frozen text embedding ``e_i``, served item
vector and bias ``(v_i, b_i)``). A ridge regression over those pairs maps any text to a
point of the factor space, so an item known only by its text lands among the trained items
whose texts resemble it. It uses only the released global model and public item texts, so
it is post-processing: it spends no privacy budget and needs no client.

On the same trained models it placed held-out items better than the federated item head in
every run measured (docs/benchmarks/README.md, "Reading coldstart.md", has the runs). A
regression with one weight per embedding feature needs several items per feature, so
small catalogues keep the item head (:func:`fit_text_map` refuses them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Below this many trained items per feature the fit is mostly regularisation.
MIN_ITEMS_PER_FEATURE = 2
# Chosen among a decade either side, which ranked alike (docs/benchmarks/README.md,
# "Reading coldstart.md").
RIDGE_L2 = 1.0


@dataclass(frozen=True)
class TextMap:
    """``[e, 1] @ weights`` = ``[v, b]`` for text embeddings ``e``."""

    weights: np.ndarray  # [features + 1, d + 1]

    def place(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Item vectors ``[n, d]`` and biases ``[n]`` of text embeddings ``[n, features]``."""
        x = np.hstack([np.asarray(emb, np.float64), np.ones((len(emb), 1))])
        out = x @ self.weights
        return out[:, :-1].astype(np.float32), out[:, -1].astype(np.float32)


def min_items(features: int) -> int:
    """The fewest trained items :func:`fit_text_map` accepts for ``features``-d embeddings."""
    return MIN_ITEMS_PER_FEATURE * (features + 1)


def fit_text_map(
    emb: np.ndarray, vectors: np.ndarray, bias: np.ndarray, *, l2: float = RIDGE_L2
) -> TextMap:
    """Fit the map on trained items: embeddings ``[n, f]``, vectors ``[n, d]``, biases ``[n]``."""
    emb, vectors, bias = np.asarray(emb), np.asarray(vectors), np.asarray(bias)
    n, features = emb.shape
    if vectors.shape[0] != n or bias.shape != (n,):
        raise ValueError(
            f"embeddings, vectors and biases disagree: {emb.shape}, {vectors.shape}, {bias.shape}"
        )
    if n < min_items(features):
        raise ValueError(f"{n} items are too few to fit a map from {features}-d text")
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0, got {l2}")
    x = np.hstack([emb.astype(np.float64), np.ones((n, 1))])
    y = np.hstack([vectors.astype(np.float64), bias.astype(np.float64)[:, None]])
    gram = x.T @ x + l2 * np.eye(features + 1)
    return TextMap(np.linalg.solve(gram, x.T @ y))
