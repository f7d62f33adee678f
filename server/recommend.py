"""The serving model: numpy over the global item model, plus the text towers when trained.

The server never holds a user's private factor. A new user is placed in the factor space
from what they tell us: items they like, free text, or both.

- Liked items: a start vector (MF only: the mean of their factors; hybrid: that mean
  averaged with the user head over their texts) is refined by fold-in, a few seeded BPR
  steps on the liked items with the item side frozen.
- Hybrid (``text-tower`` heads/lora): item vectors are ``q_i + W_i e_i``; a new item, added
  from its text, is placed by a ridge map fitted on that table (:mod:`fedrec.server.text_map`;
  the item head ``W_i e_i`` alone on small catalogues); free text contributes the user
  head applied to its embedding; given together with liked items, the two start vectors
  are averaged before the fold-in.
- The fold-in's vector then counts at :data:`FOLD_IN_WEIGHT` against the item bias: fit to
  a few items it is sure of itself and its scores swamp the bias, the model's learned
  popularity, which alone already ranks a new user's items as well as popularity counts.
  The weight was chosen on one seed's held-out users and checked on others
  (docs/benchmarks/coldstart.md, the sweep table).
- Fold-in is skipped for a model trained under DP (record- or user-level): every item row
  then carries noise, and fitting a user vector to a few liked items' exact rows fits that
  noise (docs/benchmarks/coldstart-dp.md has the comparison).

Each recommendation says what drove it: the liked item whose vector agrees most with it,
or the word of the user's text whose vector does, whichever scores higher.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedrec.server.text_map import TextMap, fit_text_map, min_items
from fedrec.server.text_store import EmbeddingStore
from fedrec.shared.checkpoint import Checkpoint
from fedrec.shared.config import config_of_checkpoint
from fedrec.shared.data.catalog import item_text
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.evaluation.ranking import top_k
from fedrec.shared.models.cooccurrence import user_vector
from fedrec.shared.models.encoder import TEXT_DIM, TextEncoder, add_lora, lora_state
from fedrec.shared.models.hybrid import (
    ITEM_HEAD_B,
    ITEM_HEAD_W,
    LORA_PREFIX,
    USER_HEAD_B,
    USER_HEAD_KEYS,
    USER_HEAD_W,
)
from fedrec.shared.models.text_cache import default_cache_dir, text_embeddings

# Words too common to explain anything.
_STOP = frozenset(
    "a an and are as at be but by for from i i'm in into is it its like love me my of on or "
    "really so some that the their them these this to very was we with you enjoy movies "
    "movie films film watch watching".split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")
MAX_EXPLAIN_WORDS = 16
# How much a folded-in user vector counts against the item bias (module docstring).
FOLD_IN_WEIGHT = 0.2


class UnknownItems(KeyError):
    """Item ids that are not in the model's catalogue."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        super().__init__(f"unknown item id(s): {', '.join(self.ids)}")

    def __str__(self) -> str:
        return str(self.args[0])


class NoTextTower(ValueError):
    """The served model was trained without text towers (text-tower = off)."""


class TrainedItem(ValueError):
    """An item of the trained model, which the admin routes may not change or remove."""


@dataclass(frozen=True)
class NewItem:
    """An item to add, known only by its text."""

    id: str
    title: str
    genres: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ScoredItem:
    """One recommended item."""

    id: str
    index: int
    title: str
    genres: list[str]
    score: float
    because: str | None = None


@dataclass(frozen=True)
class ColdStartResult:
    """Recommendations plus any warnings about the request (e.g. truncated text)."""

    items: list[ScoredItem]
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Job:
    texts: list[str]
    result: tuple[np.ndarray, list[bool]] | None = None
    error: BaseException | None = None
    done: bool = False


class _Batcher:
    """Concurrent encoder calls combined into one forward pass.

    The first caller to find the encoder idle runs every call queued by then in one batch
    and hands each its rows; the others wait for theirs. A lone caller runs at once (no
    added wait), and under load the batch grows with the queue. ``lock`` is shared by
    every batcher of one encoder: the tokenizer and the weights serve one pass at a time.
    """

    def __init__(
        self, run: Callable[[list[str]], tuple[np.ndarray, list[bool]]], lock: threading.Lock
    ) -> None:
        self._run = run
        self._lock = lock
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._running = False

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        job = _Job(list(texts))
        with self._cond:
            self._queue.append(job)
            while not job.done and self._running:
                self._cond.wait()
            if not job.done:  # the encoder is idle: run everything queued
                batch, self._queue, self._running = self._queue, [], True
        if not job.done:
            try:
                with self._lock:
                    emb, truncated = self._run([t for j in batch for t in j.texts])
                start = 0
                for j in batch:
                    end = start + len(j.texts)
                    j.result = (emb[start:end], truncated[start:end])
                    start = end
            except BaseException as err:  # every caller of the batch hears of it
                for j in batch:
                    j.error = err
            finally:
                with self._cond:
                    for j in batch:
                        j.done = True
                    self._running = False
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result


class TextTowers:
    """The trained heads and the encoder(s), as numpy maps text -> factor space.

    Safe to call from many threads: encoder calls go through :class:`_Batcher`.
    """

    def __init__(
        self,
        tensors: dict[str, np.ndarray],
        *,
        max_length: int = 256,
        item_max_length: int = 64,
        lora: tuple[int, int] | None = None,
        device: torch.device | None = None,
    ) -> None:
        # No item head (item-head = false): items are their factors; new ones use the map.
        self.item_w, self.item_b = tensors.get(ITEM_HEAD_W), tensors.get(ITEM_HEAD_B)
        self.user_w, self.user_b = tensors[USER_HEAD_W], tensors[USER_HEAD_B]
        self.dim = int(self.user_w.shape[0])
        self.item_encoder = TextEncoder(max_length=item_max_length, device=device)
        self.user_encoder = self.item_encoder
        if lora is not None:
            # The user tower was trained through LoRA adapters: a second, adapted copy.
            self.user_encoder = TextEncoder(max_length=max_length)
            add_lora(self.user_encoder, rank=lora[0], top_layers=lora[1])
            with torch.no_grad():
                for name, p in lora_state(self.user_encoder).items():
                    p.copy_(torch.as_tensor(tensors[LORA_PREFIX + name]))
            if device is not None:
                self.user_encoder.to(device)
        self.max_length = max_length
        lock = threading.Lock()
        self._user_batcher = _Batcher(self._encode_user_now, lock)
        self._item_batcher = _Batcher(self._encode_items_now, lock)

    def item_part(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Text parts ``([n, d], [n])`` of item vectors and biases (zero without an item head)."""
        if self.item_w is None or self.item_b is None:
            return np.zeros((len(emb), self.dim), np.float32), np.zeros(len(emb), np.float32)
        h = emb @ self.item_w.T + self.item_b
        return h[:, : self.dim], h[:, self.dim]

    def user_part(self, emb: np.ndarray) -> np.ndarray:
        """User-space vectors ``[n, d]`` of text embeddings."""
        return emb @ self.user_w.T + self.user_b  # type: ignore[no-any-return]

    def encode_user(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """User-side embeddings (through the adapters, if any) and which texts were cut."""
        return self._user_batcher(texts)

    def encode_items(self, texts: Sequence[str]) -> np.ndarray:
        """Frozen item-side embeddings."""
        return self._item_batcher(texts)[0]

    def _encode_user_now(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        if not texts:
            return np.zeros((0, TEXT_DIM), np.float32), []
        # The user and item encoders may be one module: its token limit is set per pass.
        saved = self.user_encoder.max_length
        self.user_encoder.max_length = self.max_length
        try:
            truncated = self.user_encoder.tokenize(list(texts)).truncated
            return self.user_encoder.encode(list(texts)), truncated
        finally:
            self.user_encoder.max_length = saved

    def _encode_items_now(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        return self.item_encoder.encode(texts), [False] * len(texts)


def words_of(text: str) -> list[str]:
    """Distinct content words of ``text`` in order (at most :data:`MAX_EXPLAIN_WORDS`)."""
    seen: list[str] = []
    for word in _WORD.findall(text):
        low = word.lower()
        if low not in _STOP and low not in (w.lower() for w in seen):
            seen.append(word)
    return seen[:MAX_EXPLAIN_WORDS]


def trained_with_dp(manifest: dict[str, Any]) -> bool:
    """Whether a checkpoint's model was trained under record- or user-level DP."""
    return manifest.get("privacy") is not None or manifest.get("user_privacy") is not None


@dataclass(frozen=True)
class Tables:
    """The served items, as one value: replaced whole by a change, never edited in place."""

    q: np.ndarray  # [n, d] item vectors
    b: np.ndarray  # [n] item biases
    unit: np.ndarray  # [n, d] the vectors at unit length (similar items)
    emb: np.ndarray  # [n, 384] text embeddings ([n, 0] without text towers)
    ids: tuple[str, ...]
    titles: tuple[str, ...]
    genres: tuple[tuple[str, ...], ...]
    texts: tuple[str, ...]
    index_of: dict[str, int]


class Recommender:
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
    ) -> None:
        n = len(catalog)
        if not 0.0 <= fold_in_weight <= 1.0:
            raise ValueError(f"fold_in_weight must be in [0, 1], got {fold_in_weight}")
        if item_factors.shape[0] != n or item_bias.shape != (n,):
            raise ValueError("item factors, biases and catalogue disagree on the number of items")
        if towers is not None and (item_text_emb is None or item_text_emb.shape[0] != n):
            raise ValueError("the text towers need one text embedding per catalogue item")
        self.towers = towers
        self.fold_in_enabled = fold_in  # off for DP-trained models (module docstring)
        self.fold_in_weight = fold_in_weight
        # Whether a liked item also counts through the user head on its text; a co-occurrence
        # model's factors already hold each item's text part, so there it would count twice.
        self.text_in_liked = text_in_liked
        # Co-occurrence models: (collaborative columns, fade) of their user vector.
        self.content_split = content_split
        ids = tuple(catalog.raw_ids)
        self._n_trained = n
        # Bumped by every change to the served items, so derived artifacts know they are stale.
        self.revision = 0
        # Where new items' text embeddings are kept between restarts (none: encode each time).
        self.embedding_store: EmbeddingStore | None = None
        self._catalog_genres = sorted({g for gs in catalog.genres for g in gs})
        # Held by writers (new items) only: readers take a snapshot of the tables instead.
        self._lock = threading.Lock()
        q = item_factors.astype(np.float32)
        b = item_bias.astype(np.float32)
        emb = np.zeros((n, 0), np.float32)
        if towers is not None and item_text_emb is not None:
            emb = item_text_emb.astype(np.float32)
            tq, tb = towers.item_part(emb)
            q, b = q + tq, b + tb
        self._t = Tables(
            q=q,
            b=b,
            unit=self._normalise(q),
            emb=emb,
            ids=ids,
            titles=tuple(catalog.titles),
            genres=tuple(tuple(g) for g in catalog.genres),
            texts=tuple(catalog.texts),
            index_of={raw: i for i, raw in enumerate(ids)},
        )
        # New items: the ridge map over the served table where the catalogue is big enough
        # to fit it (it placed held-out items better than the item head), else the head.
        self.text_map: TextMap | None = None
        if towers is not None and n >= min_items(emb.shape[1]):
            self.text_map = fit_text_map(emb, q, b)

    @staticmethod
    def _normalise(q: np.ndarray) -> np.ndarray:
        return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)  # type: ignore[no-any-return]

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: Checkpoint,
        *,
        cache_dir: Path | None = None,
        device: torch.device | None = None,
        fold_in_weight: float = FOLD_IN_WEIGHT,
    ) -> Recommender:
        """Build from a loaded checkpoint (text towers when the checkpoint has them)."""
        tensors = ckpt.tensors
        towers, emb = cls._towers_of(ckpt, cache_dir, device)
        cooccurrence = ckpt.manifest.get("kind") == "cooccurrence"
        split = None
        if cooccurrence:
            saved = config_of_checkpoint(ckpt.manifest.get("config", {})).cooccurrence
            n_trained = int(tensors["item_factors"].shape[0])
            split = (saved.collaborative_width(n_trained), saved.cooccurrence_content_fade)
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
        )

    @staticmethod
    def _towers_of(
        ckpt: Checkpoint, cache_dir: Path | None, device: torch.device | None
    ) -> tuple[TextTowers | None, np.ndarray | None]:
        """The checkpoint's text towers and catalogue embeddings (``None``s without towers)."""
        tensors = ckpt.tensors
        if not all(k in tensors for k in USER_HEAD_KEYS):
            return None, None
        config: dict[str, Any] = ckpt.manifest.get("config", {})
        item_len = int(config.get("text-max-length", 64))
        lora = None
        if any(k.startswith(LORA_PREFIX) for k in tensors):
            lora = (int(config.get("lora-rank", 8)), int(config.get("lora-layers", 2)))
        towers = TextTowers(tensors, item_max_length=item_len, lora=lora, device=device)
        cache = cache_dir or Path(config.get("text-cache-dir") or default_cache_dir())
        emb = text_embeddings(ckpt.catalog.texts, cache, max_length=item_len, device=device)
        return towers, emb

    # -- look-ups ----------------------------------------------------------------------
    # Every reader takes ``self._t`` once: an admin change swaps in whole new tables, so a
    # request sees one consistent catalogue without holding a lock.

    @property
    def tables(self) -> Tables:
        """The item tables now (a snapshot: later changes swap in new ones)."""
        return self._t

    @property
    def q(self) -> np.ndarray:
        """Item vectors ``[n, d]``."""
        return self._t.q

    @property
    def b(self) -> np.ndarray:
        """Item biases ``[n]``."""
        return self._t.b

    @property
    def emb(self) -> np.ndarray:
        """Item text embeddings ``[n, 384]`` (``[n, 0]`` without text towers)."""
        return self._t.emb

    @property
    def ids(self) -> tuple[str, ...]:
        """Item ids, in catalogue order."""
        return self._t.ids

    @property
    def titles(self) -> tuple[str, ...]:
        """Item titles."""
        return self._t.titles

    @property
    def genres(self) -> tuple[tuple[str, ...], ...]:
        """Item genres."""
        return self._t.genres

    @property
    def texts(self) -> tuple[str, ...]:
        """Item texts (what the encoder read)."""
        return self._t.texts

    @property
    def index_of(self) -> dict[str, int]:
        """Item id to index (do not modify)."""
        return self._t.index_of

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue (added items included)."""
        return len(self._t.ids)

    @property
    def has_text(self) -> bool:
        """Whether text input (free text, new items) is understood."""
        return self.towers is not None

    @property
    def known_genres(self) -> list[str]:
        """Every genre of the trained catalogue, sorted."""
        return list(self._catalog_genres)

    def genre_mask(self, genres: Sequence[str], t: Tables | None = None) -> np.ndarray:
        """Which items have one of ``genres`` (any case)."""
        t = t or self._t
        wanted = {g.lower() for g in genres}
        return np.array([bool(wanted & {x.lower() for x in gs}) for gs in t.genres], bool)

    def search(self, query: str = "", *, genres: Sequence[str] = ()) -> list[ScoredItem]:
        """Items whose title holds ``query`` (any case), of ``genres`` if given, in order."""
        t = self._t
        needle = query.casefold()
        mask = self.genre_mask(genres, t) if genres else None
        return [
            _item(t, i)
            for i, title in enumerate(t.titles)
            if (not needle or needle in title.casefold()) and (mask is None or mask[i])
        ]

    def indices(self, ids: Sequence[str], t: Tables | None = None) -> np.ndarray:
        """Catalogue indices of raw ids; :class:`UnknownItems` lists every unknown one."""
        index_of = (t or self._t).index_of
        missing = [i for i in ids if i not in index_of]
        if missing:
            raise UnknownItems(missing)
        return np.array([index_of[i] for i in ids], dtype=np.int64)

    def item(self, index: int, score: float = 0.0, because: str | None = None) -> ScoredItem:
        """The catalogue entry of ``index`` as a :class:`ScoredItem`."""
        return _item(self._t, index, score, because)

    def lookup(self, item_id: str) -> ScoredItem:
        """The catalogue entry of ``item_id``; :class:`UnknownItems` if there is none."""
        t = self._t
        return _item(t, int(self.indices([item_id], t)[0]))

    @staticmethod
    def _top(scores: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
        """The evaluation's own top-k (ties by item index); never a non-finite score."""
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        top = top_k(scores, exclude, k)
        return top[np.isfinite(scores[top])]

    def similar_items(
        self,
        item_id: str,
        k: int,
        *,
        offset: int = 0,
        exclude: Sequence[str] = (),
        genres: Sequence[str] = (),
    ) -> list[ScoredItem]:
        """Items ``offset`` to ``offset + k`` by cosine similarity to ``item_id``'s vector.

        The item itself and ``exclude`` are never returned; with ``genres`` only items having
        one of them are.
        """
        t = self._t
        idx = int(self.indices([item_id], t)[0])
        excluded = np.union1d([idx], self.indices(list(exclude), t) if exclude else [idx])
        sims = t.unit @ t.unit[idx]
        if genres:
            excluded = np.union1d(excluded, np.flatnonzero(~self.genre_mask(genres, t)))
        top = self._top(sims, excluded.astype(np.int64), offset + k)[offset:]
        return [_item(t, i, sims[i]) for i in top]

    # -- cold start --------------------------------------------------------------------

    def liked_vector(self, liked: np.ndarray, t: Tables | None = None) -> np.ndarray:
        """The user vector of liked item indices (see the module docstring)."""
        t = t or self._t
        if self.content_split is not None:
            rank, fade = self.content_split
            return user_vector(t.q, liked, rank=rank, fade=fade).astype(np.float32)
        vec = t.q[liked].mean(axis=0)
        if self.towers is not None and self.text_in_liked:
            vec = 0.5 * (vec + self.towers.user_part(t.emb[liked]).mean(axis=0))
        return vec  # type: ignore[no-any-return]

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
        """A user vector fit to ``liked`` with the item side frozen (MF "fold-in").

        BPR of each liked item against uniformly drawn items, L2-regularised towards
        ``start`` (default: zero), by gradient descent: what a client's personalisation
        does, run here on the few items a new user sends. Seeded, so answers are stable.
        """
        t = t or self._t
        q, b = t.q, t.b
        rng = np.random.default_rng(seed)
        anchor = np.zeros(q.shape[1], np.float64) if start is None else start.astype(np.float64)
        u = anchor.copy()
        q_pos, b_pos = q[liked].astype(np.float64), b[liked].astype(np.float64)
        for _ in range(steps):
            neg = rng.integers(0, len(t.ids), size=(len(liked), negatives))
            diff = q_pos[:, None, :] - q[neg]  # [L, N, d]
            x = diff @ u + (b_pos[:, None] - b[neg])
            weight = 1.0 / (1.0 + np.exp(np.clip(x, -30, 30)))  # -d/dx log sigmoid(x)
            grad = -(weight[..., None] * diff).mean(axis=(0, 1)) + reg * (u - anchor)
            u -= lr * grad
        return u.astype(np.float32)

    def text_vector(self, text: str) -> tuple[np.ndarray, bool]:
        """The user vector of free text, and whether the text was truncated."""
        if self.towers is None:
            raise NoTextTower(
                "this model was trained without text towers (text-tower = off): describe the "
                "user with liked_item_ids instead"
            )
        emb, truncated = self.towers.encode_user([text])
        return self.towers.user_part(emb)[0], truncated[0]

    def text_neighbours(self, text: str, m: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` catalogue items whose texts are nearest ``text`` and their weights.

        Weights are a softmax of cosine similarities (temperature 0.05), so the closest
        texts dominate. Used to read free text through the items it resembles.
        """
        if self.towers is None:
            raise NoTextTower("this model was trained without text towers (text-tower = off)")
        query = self.towers.encode_items([text])[0]
        sims = self._t.emb @ query
        top = np.argsort(-sims, kind="stable")[: min(m, len(sims))]
        logits = (sims[top] - sims[top].max()) / 0.05
        weights = np.exp(logits) / np.exp(logits).sum()
        return top, weights

    def user_scores(
        self, liked: np.ndarray, text: str | None = None, t: Tables | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Scores of every item for a new user, the user vector, and warnings."""
        text_part = self.text_vector(text) if text is not None and text.strip() else None
        return self._scores(t or self._t, liked, text_part)

    def _scores(
        self, t: Tables, liked: np.ndarray, text_part: tuple[np.ndarray, bool] | None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        parts, warnings = [], []
        if liked.size:
            parts.append(self.liked_vector(liked, t))
        if text_part is not None:
            vec, truncated = text_part
            parts.append(vec)
            if truncated and self.towers is not None:
                warnings.append(
                    f"text was longer than {self.towers.max_length} tokens and was truncated"
                )
        if not parts:
            raise ValueError("give liked item ids, text, or both")
        user = np.mean(parts, axis=0)
        if liked.size and self.fold_in_enabled:
            # Fold-in from there, weighted against the bias (module docstring).
            user = self.fold_in_weight * self.fold_in(liked, start=user, t=t)
        return t.q @ user + t.b, user, warnings

    def _text_parts(
        self, text: str | None
    ) -> tuple[tuple[np.ndarray, bool] | None, list[str], np.ndarray]:
        """The text's user vector and truncation, its content words and their vectors.

        The text and its words go through the encoder in one pass.
        """
        if text is None or not text.strip():
            return None, [], np.zeros((0, 0), np.float32)
        if self.towers is None:
            self.text_vector(text)  # raises NoTextTower, saying what to send instead
            raise AssertionError("unreachable")
        words = words_of(text)
        emb, truncated = self.towers.encode_user([text, *words])
        vectors = self.towers.user_part(emb)
        return (vectors[0], truncated[0]), words, vectors[1:]

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
        liked = self.indices(list(liked_item_ids), t) if liked_item_ids else np.zeros(0, np.int64)
        excluded = np.union1d(liked, self.indices(list(exclude), t) if exclude else liked)
        text_part, words, word_vectors = self._text_parts(text)
        scores, _, warnings = self._scores(t, liked, text_part)
        if genres:
            excluded = np.union1d(excluded, np.flatnonzero(~self.genre_mask(genres, t)))
        top = self._top(scores, excluded, k)
        reasons = self._explain(t, top, liked, words, word_vectors)
        items = [_item(t, i, scores[i], because=r) for i, r in zip(top, reasons, strict=True)]
        return ColdStartResult(items=items, warnings=warnings)

    @staticmethod
    def _explain(
        t: Tables, top: np.ndarray, liked: np.ndarray, words: list[str], vectors: np.ndarray
    ) -> list[str | None]:
        """Per recommended item: the liked item id or ``"text: <word>"`` that agrees most."""
        best: list[tuple[float, str | None]] = [(-np.inf, None)] * len(top)
        if liked.size:
            affinity = t.q[top] @ t.q[liked].T  # [k, n_liked]
            best = [(float(row.max()), t.ids[liked[int(np.argmax(row))]]) for row in affinity]
        if words:
            affinity = t.q[top] @ vectors.T  # [k, w], the words' user-space vectors
            for j, row in enumerate(affinity):
                if float(row.max()) > best[j][0] or best[j][1] is None:
                    best[j] = (float(row.max()), f"text: {words[int(np.argmax(row))]}")
        return [b for _, b in best]

    # -- new items ---------------------------------------------------------------------

    @property
    def n_trained(self) -> int:
        """How many items came with the model (the rest were added from their text)."""
        return self._n_trained

    def _placed(
        self, items: Sequence[NewItem]
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Texts, embeddings, vectors and biases of new items, encoded in one batch."""
        if self.towers is None:
            raise NoTextTower(
                "this model was trained without text towers (text-tower = off): new items "
                "cannot be placed from text"
            )
        texts = [item_text(it.title, list(it.genres), extra=it.description) for it in items]
        if self.embedding_store is not None:
            emb = self.embedding_store.encode(texts, self.towers.encode_items)
        else:
            emb = self.towers.encode_items(texts)
        place = self.text_map.place if self.text_map is not None else self.towers.item_part
        tq, tb = place(emb)
        return texts, emb, tq.astype(np.float32), tb.astype(np.float32)

    def add_items(self, items: Sequence[NewItem]) -> list[ScoredItem]:
        """Add items known only by their text; they are recommendable at once.

        Their vectors come from their text alone (no trained factor yet): the ridge map
        fitted on the served item table (:mod:`fedrec.server.text_map`), or the item head
        where the catalogue is too small to fit one. All texts go through the encoder in
        one batch, and the tables grow once, however many items there are.
        """
        if not items:
            return []
        with self._lock:
            t = self._t
            ids = [it.id for it in items]
            taken = [i for i in ids if i in t.index_of]
            if taken or len(set(ids)) < len(ids):
                raise ValueError(f"item id(s) already in the catalogue: {', '.join(taken or ids)}")
            texts, emb, tq, tb = self._placed(items)
            start = len(t.ids)
            new_ids = t.ids + tuple(ids)
            self._t = Tables(
                q=np.vstack([t.q, tq]),
                b=np.concatenate([t.b, tb]),
                unit=np.vstack([t.unit, self._normalise(tq)]),
                emb=np.vstack([t.emb, emb]),
                ids=new_ids,
                titles=t.titles + tuple(it.title for it in items),
                genres=t.genres + tuple(tuple(it.genres) for it in items),
                texts=t.texts + tuple(texts),
                index_of={**t.index_of, **{raw: start + j for j, raw in enumerate(ids)}},
            )
            self.revision += 1
            return [_item(self._t, start + j, float(tb[j])) for j in range(len(items))]

    def add_item(
        self, item_id: str, title: str, genres: Sequence[str] = (), description: str = ""
    ) -> ScoredItem:
        """Add one item known only by its text (:meth:`add_items`)."""
        return self.add_items([NewItem(item_id, title, tuple(genres), description)])[0]

    def _added_index(self, t: Tables, item_id: str) -> int:
        idx = int(self.indices([item_id], t)[0])
        if idx < self._n_trained:
            raise TrainedItem(
                f"item {item_id!r} comes with the trained model; only added items can change"
            )
        return idx

    def update_item(self, item: NewItem) -> ScoredItem:
        """Replace an added item's text (and so its vector); trained items are refused."""
        with self._lock:
            t = self._t
            idx = self._added_index(t, item.id)
            texts, emb, tq, tb = self._placed([item])
            q, b, e, unit = t.q.copy(), t.b.copy(), t.emb.copy(), t.unit.copy()
            q[idx], b[idx], e[idx], unit[idx] = tq[0], tb[0], emb[0], self._normalise(tq)[0]

            def put(table: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
                return table[:idx] + (value,) + table[idx + 1 :]

            self._t = replace(
                t,
                q=q,
                b=b,
                emb=e,
                unit=unit,
                titles=put(t.titles, item.title),
                genres=put(t.genres, tuple(item.genres)),
                texts=put(t.texts, texts[0]),
            )
            self.revision += 1
            return _item(self._t, idx, float(tb[0]))

    def remove_item(self, item_id: str) -> None:
        """Remove an added item; trained items are refused."""
        with self._lock:
            t = self._t
            idx = self._added_index(t, item_id)

            def drop(table: tuple[Any, ...]) -> tuple[Any, ...]:
                return table[:idx] + table[idx + 1 :]

            ids = drop(t.ids)
            self._t = Tables(
                q=np.delete(t.q, idx, axis=0),
                b=np.delete(t.b, idx),
                unit=np.delete(t.unit, idx, axis=0),
                emb=np.delete(t.emb, idx, axis=0),
                ids=ids,
                titles=drop(t.titles),
                genres=drop(t.genres),
                texts=drop(t.texts),
                index_of={raw: i for i, raw in enumerate(ids)},
            )
            self.revision += 1


def _item(t: Tables, index: int, score: float = 0.0, because: str | None = None) -> ScoredItem:
    """The catalogue entry of ``index`` in ``t`` as a :class:`ScoredItem`."""
    return ScoredItem(
        id=t.ids[index],
        index=int(index),
        title=t.titles[index],
        genres=list(t.genres[index]),
        score=float(score),
        because=because,
    )
