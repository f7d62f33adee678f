"""Free text read as an intent, from public parts and the model's private popularity.

A query such as "a feel-good musical" names what is wanted (a genre, a mood, a title) far
more than it places a user in the collaborative space: read through the user head, it
lands near whatever is popular. This scorer answers it from three parts instead:

- **similarity**: the cosine of the query's frozen embedding with each item's text (the
  catalogue text is public), counted only where it stands out (its standard score above
  :data:`SIMILARITY_HINGE`): titles and named films are found this way, while the many
  weak matches of a genre query's words in titles do not push popular answers aside;
- **genres**: the query's affinity to each catalogue genre (its cosine with the genre's
  text, as a softmax at :data:`GENRE_TEMPERATURE`), and an item's share of it the sum over
  its genres; in the score as its log, so an item of none of the wanted genres falls far
  behind however popular it is;
- **popularity**: the model's own item popularity (``item_prior``: for a co-occurrence
  model, the log of the released sum's row sums, i.e. user counts: post-processing of the
  DP release), so among the items that answer the query the familiar ones come first.

``score = similarity_weight · max(z(similarity) - SIMILARITY_HINGE, 0) + log(genres +
GENRE_FLOOR) + prior_weight · z(popularity)``, ``z`` the standard score over the
catalogue. The weights are the checkpoint's ``cooccurrence-text-similarity`` and
``cooccurrence-text-prior``, chosen on a development query set and validation users
(docs/benchmarks/coldstart-intents.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fedrec.server.serving.tables import Tables

GENRE_TEMPERATURE = 0.02  # cosine differences between genre texts are small: sharpen them
GENRE_FLOOR = 1e-3  # log(0) guard: an item of no wanted genre scores log(GENRE_FLOOR)
SIMILARITY_HINGE = 2.0  # standard scores of text similarity below this count as none


def standard_score(values: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` over the items, the last axis (all zeros where it is constant)."""
    values = np.asarray(values, np.float64)
    spread = values.std(axis=-1, keepdims=True)
    centred = values - values.mean(axis=-1, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(values), where=spread > 0)


def genre_text(genre: str) -> str:
    """The text a genre is embedded as: the wording of the items' own texts."""
    return f"Genres: {genre}."


@dataclass(frozen=True)
class _Prepared:
    unit_emb: np.ndarray  # [n, 384] item text embeddings at unit length
    genre_names: list[str]
    genre_vectors: np.ndarray  # [g, 384] the genres' text embeddings at unit length
    members: np.ndarray  # [n, g] 0/1: which genres each item has
    prior: np.ndarray | None  # [n] standard scores of the item popularity, if any


class IntentScorer:
    """Scores every item of a snapshot for a query embedding (module docstring).

    ``encode`` embeds texts with the same frozen encoder as the items'; genre texts are
    embedded once each, when a snapshot first holds the genre. Safe to share between threads.
    """

    def __init__(
        self,
        encode: Callable[[list[str]], np.ndarray],
        *,
        similarity_weight: float,
        prior_weight: float,
    ) -> None:
        if similarity_weight < 0 or prior_weight < 0:
            raise ValueError("the intent weights must be >= 0")
        self._encode = encode
        self.similarity_weight = float(similarity_weight)
        self.prior_weight = float(prior_weight)
        self._genres: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        # What scoring needs of one snapshot, kept for the last snapshot seen: tables are
        # replaced whole by a change, so the snapshot object itself is the key.
        self._prepared: tuple[Tables, _Prepared] | None = None

    def _genre_vectors(self, names: Sequence[str]) -> np.ndarray:
        missing = [g for g in names if g not in self._genres]
        if missing:
            with self._lock:
                vectors = _unit(self._encode([genre_text(g) for g in missing]))
                self._genres.update(zip(missing, vectors, strict=True))
        return np.stack([self._genres[g] for g in names])

    def _prepare(self, t: Tables) -> _Prepared:
        held = self._prepared
        if held is not None and held[0] is t:
            return held[1]
        names = sorted({g for gs in t.genres for g in gs})
        column = {g: j for j, g in enumerate(names)}
        members = np.zeros((len(t.ids), len(names)))
        for i, gs in enumerate(t.genres):
            members[i, [column[g] for g in gs]] = 1.0
        prepared = _Prepared(
            unit_emb=_unit(t.emb),
            genre_names=names,
            genre_vectors=self._genre_vectors(names) if names else np.zeros((0, 0)),
            members=members,
            prior=standard_score(t.prior) if t.prior.size == len(t.ids) else None,
        )
        self._prepared = (t, prepared)
        return prepared

    def scores(self, t: Tables, query: np.ndarray) -> np.ndarray:
        """Every item's score for the raw (encoder) embedding ``query``."""
        return self.scores_many(t, np.asarray(query)[None, :])[0]

    def scores_many(self, t: Tables, queries: np.ndarray) -> np.ndarray:
        """:meth:`scores` of each row of ``queries [n, 384]``: ``[n, items]``, in one product."""
        p = self._prepare(t)
        q = _unit(np.asarray(queries, np.float64))
        similarity = standard_score(q @ p.unit_emb.T)  # [n, items], each row its own
        out = self.similarity_weight * np.maximum(similarity - SIMILARITY_HINGE, 0.0)
        if p.genre_names:
            affinity = q @ p.genre_vectors.T  # [n, genres]
            weights = np.exp((affinity - affinity.max(axis=1, keepdims=True)) / GENRE_TEMPERATURE)
            weights /= weights.sum(axis=1, keepdims=True)
            out = out + np.log(weights @ p.members.T + GENRE_FLOOR)
        if p.prior is not None:
            out = out + self.prior_weight * p.prior
        return out


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, np.float64)
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)
