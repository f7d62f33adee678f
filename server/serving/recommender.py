"""The serving model: the served tables, with cold start, similar items and admin changes.

:class:`Recommender` composes the package's parts over one :class:`Tables` snapshot at a
time: the text towers (:mod:`.towers`), a new user's vector (:mod:`.scoring`), the
``because`` of each answer (:mod:`.explain`) and the admin's changes to the items
(:mod:`.admin`, which places new items through :mod:`.placement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from fedrec.server.serving import scoring
from fedrec.server.serving.admin import EditableCatalogue
from fedrec.server.serving.errors import NoTextTower
from fedrec.server.serving.explain import explain, explain_by_removal
from fedrec.server.serving.intent import IntentScorer, standard_score
from fedrec.server.serving.placement import text_map_for
from fedrec.server.serving.scoring import FOLD_IN_WEIGHT
from fedrec.server.serving.tables import ScoredItem, Tables
from fedrec.server.serving.towers import TextTowers, towers_of
from fedrec.shared.checkpoint import Checkpoint
from fedrec.shared.config import config_of_checkpoint
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.models.cooccurrence import ITEM_PRIOR


@dataclass(frozen=True)
class ColdStartResult:
    """Recommendations plus any warnings about the request (e.g. truncated text)."""

    items: list[ScoredItem]
    warnings: list[str] = field(default_factory=list)


def trained_with_dp(manifest: dict[str, Any]) -> bool:
    """Whether a checkpoint's model was trained under record- or user-level DP."""
    return manifest.get("privacy") is not None or manifest.get("user_privacy") is not None


class TextPart(NamedTuple):
    """Free text as the model reads it."""

    vector: np.ndarray  # the user head's vector of the text
    truncated: bool  # whether the encoder cut the text at its token limit
    raw: np.ndarray  # the encoder's embedding of the text (the intent reading)


class Recommender(EditableCatalogue):
    """Item vectors ``[n, d]``, biases ``[n]``, the catalogue, and the text towers if any."""

    def __init__(
        self,
        item_factors: np.ndarray,
        item_bias: np.ndarray,
        catalog: ItemCatalog,
        *,
        towers: TextTowers | None = None,
        item_text_emb: np.ndarray | None = None,
        fold_in: bool = True,
        fold_in_weight: float = FOLD_IN_WEIGHT,
        text_in_liked: bool = True,
        content_split: tuple[int, float] | None = None,
        item_prior: np.ndarray | None = None,
        intent_weights: tuple[float, float] | None = None,
        liked_weight: float | None = None,
    ) -> None:
        n = len(catalog)
        if not 0.0 <= fold_in_weight <= 1.0:
            raise ValueError(f"fold_in_weight must be in [0, 1], got {fold_in_weight}")
        if item_factors.shape[0] != n or item_bias.shape != (n,):
            raise ValueError("item factors, biases and catalogue disagree on the number of items")
        if towers is not None and (item_text_emb is None or item_text_emb.shape[0] != n):
            raise ValueError("the text towers need one text embedding per catalogue item")
        self.fold_in_enabled = fold_in  # off for DP-trained models (see .scoring)
        self.fold_in_weight = fold_in_weight
        # Whether a liked item also counts through the user head on its text; a co-occurrence
        # model's factors already hold each item's text part, so there it would count twice.
        self.text_in_liked = text_in_liked
        # Co-occurrence models: (collaborative columns, fade) of their user vector.
        self.content_split = content_split
        q, b = item_factors.astype(np.float32), item_bias.astype(np.float32)
        emb = np.zeros((n, 0), np.float32)
        if towers is not None and item_text_emb is not None:
            emb = item_text_emb.astype(np.float32)
            q, b = towers.item_vectors(q, b, emb)
        # Liked items as item-kNN on the factors (.scoring.similar_to_liked) where the model
        # says how to weigh them next to its popularity; else through a user vector.
        self.liked_weight = (
            liked_weight if content_split is not None and item_prior is not None else None
        )
        super().__init__(
            # item-kNN reads the trained items' cosines: kept with the tables (Tables.gram)
            Tables.of(q, b, emb, catalog, item_prior, gram=self.liked_weight is not None),
            towers=towers,
            text_map=text_map_for(towers, emb, q, b),
        )
        # Free text as an intent (.intent) where the model says how to weigh it; else the
        # user head places the text like a user.
        self.intent: IntentScorer | None = None
        if towers is not None and intent_weights is not None:
            self.intent = IntentScorer(
                towers.encode_items,
                similarity_weight=intent_weights[0],
                prior_weight=intent_weights[1],
            )

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: Checkpoint,
        *,
        cache_dir: Path | None = None,
        device: torch.device | None = None,
        fold_in_weight: float = FOLD_IN_WEIGHT,
        encoder_passes: int = 1,
    ) -> Recommender:
        """Build from a loaded checkpoint (text towers when the checkpoint has them).

        ``encoder_passes``: encoder passes that may run at once, for concurrent requests.
        """
        tensors = ckpt.tensors
        towers, emb = towers_of(ckpt, cache_dir, device, passes=encoder_passes)
        cooccurrence = ckpt.manifest.get("kind") == "cooccurrence"
        split, weights, liked_weight = None, None, None
        if cooccurrence:
            saved = config_of_checkpoint(ckpt.manifest.get("config", {})).cooccurrence
            n_trained = int(tensors["item_factors"].shape[0])
            split = (saved.collaborative_width(n_trained), saved.cooccurrence_content_fade)
            if ITEM_PRIOR in tensors:
                weights = (saved.cooccurrence_text_similarity, saved.cooccurrence_text_prior)
                liked_weight = saved.cooccurrence_liked_similarity
        return cls(
            tensors["item_factors"],
            tensors["item_bias"],
            ckpt.catalog,
            towers=towers,
            item_text_emb=emb,
            # A co-occurrence model has no trained user side to fold in against.
            fold_in=not trained_with_dp(ckpt.manifest) and not cooccurrence,
            fold_in_weight=fold_in_weight,
            text_in_liked=not cooccurrence,
            content_split=split,
            item_prior=tensors.get(ITEM_PRIOR),
            intent_weights=weights,
            liked_weight=liked_weight,
        )

    @property
    def has_text(self) -> bool:
        """Whether text input (free text, new items) is understood."""
        return self.towers is not None

    # -- cold start (see .scoring) -----------------------------------------------------

    def liked_vector(self, liked: np.ndarray, t: Tables | None = None) -> np.ndarray:
        """The user vector of liked item indices (see :mod:`.scoring`)."""
        towers = self.towers if self.text_in_liked else None
        return scoring.liked_vector(
            t or self._t,
            liked,
            user_part=towers.user_part if towers is not None else None,
            content_split=self.content_split,
        )

    def fold_in(
        self,
        liked: np.ndarray,
        start: np.ndarray | None = None,
        *,
        steps: int = 100,
        lr: float = 0.5,
        reg: float = 0.05,
        negatives: int = 64,
        seed: int = 0,
        t: Tables | None = None,
    ) -> np.ndarray:
        """A user vector fit to ``liked`` with the item side frozen (:func:`.scoring.fold_in`)."""
        return scoring.fold_in(
            t or self._t, liked, start, steps=steps, lr=lr, reg=reg, negatives=negatives, seed=seed
        )

    def text_vector(self, text: str) -> TextPart:
        """The user vector of free text, whether it was truncated, and its raw embedding."""
        towers = self._text_towers("describe the user with liked_item_ids instead")
        emb, truncated = towers.encode_user([text])
        return TextPart(towers.user_part(emb)[0], truncated[0], emb[0])

    def text_neighbours(self, text: str, m: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` catalogue items whose texts are nearest ``text`` and their weights.

        Weights are a softmax of cosine similarities, so the closest texts dominate. Used
        to read free text through the items it resembles.
        """
        query = self._text_towers().encode_items([text])[0]
        return scoring.nearest_texts(self._t.emb, query, m)

    def user_scores(
        self, liked: np.ndarray, text: str | None = None, t: Tables | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Scores of every item for a new user, the user vector, and warnings."""
        text_part = self.text_vector(text) if text is not None and text.strip() else None
        return self._scores(t or self._t, liked, text_part)

    def cold_start(
        self,
        liked_item_ids: Sequence[str] = (),
        k: int = 10,
        exclude: Sequence[str] = (),
        *,
        text: str | None = None,
        genres: Sequence[str] = (),
    ) -> ColdStartResult:
        """Top ``k`` for a new user who likes ``liked_item_ids`` and/or describes themselves.

        Liked and ``exclude`` items are never returned; with ``genres`` only items having one
        of them are. Runs without a lock, on one snapshot of the tables.
        """
        t = self._t
        liked = t.indices(list(liked_item_ids)) if liked_item_ids else np.zeros(0, np.int64)
        excluded = np.union1d(liked, t.indices(list(exclude)) if exclude else liked)
        text_part, words, evidence = self._text_parts(text)
        # The liked items' similarities, computed once for the scores and the explanation.
        sims = None
        if self.liked_weight is not None and liked.size:
            sims = scoring.liked_similarity(t, liked)
        scores, _, warnings = self._scores(t, liked, text_part, sims=sims)
        if genres:
            excluded = np.union1d(excluded, np.flatnonzero(~t.genre_mask(genres)))
        top = scoring.top(scores, excluded, k)
        if self.liked_weight is not None or (self.intent is not None and text_part is not None):
            labels, without = self._without_each(t, liked, text_part, words, evidence, sims)
            reasons = explain_by_removal(scores, top, labels, without)
        else:
            reasons = explain(t, top, liked, words, evidence)
        items = [t.entry(i, scores[i], because=r) for i, r in zip(top, reasons, strict=True)]
        return ColdStartResult(items=items, warnings=warnings)

    def _without_each(
        self,
        t: Tables,
        liked: np.ndarray,
        text_part: TextPart | None,
        words: list[str],
        evidence: np.ndarray,
        sims: np.ndarray | None = None,
    ) -> tuple[list[str], list[np.ndarray]]:
        """Each piece of evidence (a liked item, a query word) and the scores without it.

        ``sims``: the liked items' :func:`.scoring.liked_similarity`, if already computed.
        """
        if self.liked_weight is None or not liked.size:
            return self._without_each_rescored(t, liked, text_part, words, evidence)
        # Additive in the liked items: each one's removal subtracts its own similarities,
        # so the answer's cost grows with the liked items, not with their square.
        if sims is None:
            sims = scoring.liked_similarity(t, liked)
        total = sims.sum(axis=1)
        prior = t.prior.astype(np.float64)
        text_scores = None
        if text_part is not None and self.intent is not None:
            text_scores = self.intent.scores(t, text_part.raw)
        labels, without = [], []
        for j in range(liked.size):
            labels.append(t.ids[int(liked[j])])
            rest = prior + self.liked_weight * (total - sims[:, j])
            if text_scores is not None:
                rest = standard_score(rest) + text_scores if liked.size > 1 else text_scores
            without.append(rest)
        if text_scores is not None and self.intent is not None and words:
            liked_part = standard_score(prior + self.liked_weight * total)
            labels += [f"text: {word}" for word in words]
            without += list(liked_part + self.intent.scores_many(t, evidence))
        return labels, without

    def _without_each_rescored(
        self,
        t: Tables,
        liked: np.ndarray,
        text_part: TextPart | None,
        words: list[str],
        evidence: np.ndarray,
    ) -> tuple[list[str], list[np.ndarray]]:
        """:meth:`_without_each` by scoring again without each piece (any model)."""
        labels, without = [], []
        for j in range(liked.size):
            labels.append(t.ids[int(liked[j])])
            without.append(self._evidence_scores(t, np.delete(liked, j), text_part))
        if text_part is not None and self.intent is not None and words:
            labels += [f"text: {word}" for word in words]
            if not liked.size:  # the text alone: its scores are the intent's, all in one
                without += list(self.intent.scores_many(t, evidence))
            else:
                for emb in evidence:
                    without.append(self._evidence_scores(t, liked, text_part._replace(raw=emb)))
        return labels, without

    def _evidence_scores(
        self, t: Tables, liked: np.ndarray, text_part: TextPart | None
    ) -> np.ndarray:
        """The scores of what is left; with nothing left, the model's popularity alone."""
        if not liked.size and text_part is None:
            return t.prior.astype(np.float64) if t.prior.size else t.b.astype(np.float64)
        return self._scores(t, liked, text_part)[0]

    def _text_towers(self, instead: str = "") -> TextTowers:
        if self.towers is None:
            raise NoTextTower(
                "this model was trained without text towers (text-tower = off)"
                + (f": {instead}" if instead else "")
            )
        return self.towers

    def _scores(
        self,
        t: Tables,
        liked: np.ndarray,
        text_part: TextPart | None,
        *,
        sims: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        starts, warnings = [], []
        if liked.size:
            starts.append(self.liked_vector(liked, t))
        if text_part is not None:
            starts.append(text_part.vector)
            if text_part.truncated and self.towers is not None:
                warnings.append(
                    f"text was longer than {self.towers.max_length} tokens and was truncated"
                )
        liked_scores = None
        if liked.size and self.liked_weight is not None:
            liked_scores = scoring.similar_to_liked(t, liked, weight=self.liked_weight, sims=sims)
        if text_part is not None and self.intent is not None:
            text_scores = self.intent.scores(t, text_part.raw)
            if not liked.size:
                return text_scores, text_part.vector, warnings
            # both: the liked items' ranking and the text's, each as standard scores
            user = starts[0]
            if liked_scores is None:
                liked_scores = t.q @ user + t.b
            return standard_score(liked_scores) + text_scores, user, warnings
        if liked_scores is not None:
            return liked_scores, starts[0], warnings
        weight = self.fold_in_weight if self.fold_in_enabled else None
        user = scoring.new_user(t, liked, starts, fold_in_weight=weight)
        return t.q @ user + t.b, user, warnings

    def _text_parts(self, text: str | None) -> tuple[TextPart | None, list[str], np.ndarray]:
        """The text as the model reads it, its content words, and the evidence of each word.

        The evidence is each word's user-space vector, or, where text is read as an intent,
        the embedding of the text without that word (what :func:`explain_by_removal` compares).
        All of it comes from one encoder pass over the text (:class:`.towers.UserText`).
        """
        if text is None or not text.strip():
            return None, [], np.zeros((0, 0), np.float32)
        towers = self._text_towers("describe the user with liked_item_ids instead")
        read = towers.read_user([text])[0]
        part = TextPart(towers.user_part(read.embedding[None])[0], read.truncated, read.embedding)
        words = list(read.words)
        if self.intent is not None:
            return part, words, read.without
        return part, words, towers.user_part(read.alone)
