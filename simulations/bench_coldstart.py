"""Cold-start benchmark: new users from liked items or text, new items from text alone.

Protocol (ML-100K by default, everything seeded):

- 10% of users and 10% of items are held out of training entirely. The rest (warm users on
  warm items) is written as a plain ratings/items CSV pair and federated like any data set:
  the same client code and aggregation as a Flower round, in the plain single-process loop
  of :mod:`fedrec.simulation.plain_loop` (Flower's own overhead is measured separately).
- Two models are trained on it with identical settings: MF only (``text-tower = off``) and
  the hybrid (``text-tower = heads``).
- **User cold start**: for each held-out user, their rated warm items in time order; the
  first 5 rated >= 4 are their "liked" items. Given the first 1, 3 or 5 of them, or a short
  text built from the genres of those 5 (no item ids), rank the warm catalogue minus those
  5; relevant = every other warm item the user rated. Compared with popularity (counts in
  the training data) and the MF-only cold start (mean of the liked items' factors).
- **Item cold start**: every warm user ranks the held-out items only, with their private
  factor (fit on-device as in federated evaluation) against each new item's text-only
  vector (added through the serving model's ``add_item``); relevant = the held-out items
  they rated. Compared with random order and a content-only baseline (cosine between the
  mean frozen embedding of the user's training items and each new item's embedding).
- **Warm users**: the usual personalised leave-last-out NDCG@10 (full ranking), MF only
  vs hybrid.
- **Centralized references** (not private, not federated: what the protocol allows): item-kNN
  (cosine of co-occurrence) and EASE (Steck 2019) fit on the warm users' whole interaction
  matrix, scoring the same held-out users from the same 3 or 5 liked items; and a ceiling
  where EASE knows a random half of each held-out user's warm items and ranks the other
  half (against popularity on that half). These need the cross-user co-occurrence matrix, which
  the federated server never sees; they say how far above popularity this protocol lets
  any method go with a few liked items.
"""

from __future__ import annotations

import csv
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fedrec.client.dataview import client_seed, load_client_data
from fedrec.client.state import ClientStateStore
from fedrec.client.task import build_model
from fedrec.server.serving import FOLD_IN_WEIGHT, Recommender, TextTowers
from fedrec.server.text_map import fit_text_map, min_items
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_dataset, load_split
from fedrec.shared.data.dataset import Dataset
from fedrec.shared.evaluation import paired_difference, summarize
from fedrec.shared.evaluation.metrics import hit_multi_at_k, ndcg_at_k, ndcg_multi_at_k
from fedrec.shared.evaluation.ranking import top_k as _top_k
from fedrec.shared.models.factory import item_text_embeddings
from fedrec.shared.models.initial import init_global
from fedrec.shared.training import finetune_users
from fedrec.simulation.plain_loop import PlainLoop
from fedrec.simulations.coldstart_rows import (
    CEILING,
    FIRST,
    MODEL_LABELS,
    RANDOM,
    K,
    Row,
    best_reference,
    find,
    metrics_of,
)
from fedrec.simulations.coldstart_settings import TRAIN_SETTINGS, check_repeats
from fedrec.simulations.report import machine_stamp, save, timestamp

logger = logging.getLogger(__name__)

GIVEN = (1, 3, 5)
LIKED_RATING = 4.0

# The served fold-in weight's sweep (server/serving/scoring.py): 0 is the item bias alone,
# 1 the fold-in alone. The served weight was chosen from this sweep on one seed's held-out
# users; runs on other seeds are users it was not chosen on.
FOLD_IN_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)
WEIGHT_CHOSEN_ON_SEED = 42

# The goals set for new users (NDCG@10 over popularity's), reported against what was measured.
GOAL_GIVEN = 3  # the liked items of the first goal (and of the repeats' headline column)
GOAL_3_LIKED = 1.5
GOAL_TEXT = 1.2


# The federation both models are trained with unless overridden: the ml100k-nodp scenario
# (no DP). A DP run overrides dp-enabled and the client optimizer (see the CLI's help).
@dataclass(frozen=True)
class ColdSplit:
    """Full-data indices of the users and items held out of training."""

    users: np.ndarray
    items: np.ndarray


def choose_cold(n_users: int, n_items: int, *, fraction: float, seed: int) -> ColdSplit:
    """A seeded ``fraction`` of users and of items (at least one each)."""
    rng = np.random.default_rng([seed, 11])
    n_u = max(1, round(n_users * fraction))
    n_i = max(1, round(n_items * fraction))
    return ColdSplit(
        users=np.sort(rng.choice(n_users, n_u, replace=False)),
        items=np.sort(rng.choice(n_items, n_i, replace=False)),
    )


def write_warm_dataset(dataset: Dataset, cold: ColdSplit, folder: Path) -> Path:
    """Warm users' ratings of warm items as ``ratings.csv`` + ``items.csv``; returns ratings."""
    folder.mkdir(parents=True, exist_ok=True)
    inter = dataset.interactions
    keep = ~np.isin(inter.users, cold.users) & ~np.isin(inter.items, cold.items)
    ratings = folder / "ratings.csv"
    with ratings.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["user", "item", "rating", "timestamp"])
        for u, i, r, t in zip(
            inter.users[keep],
            inter.items[keep],
            inter.ratings[keep],
            inter.timestamps[keep],
            strict=True,
        ):
            out.writerow([dataset.user_raw_ids[u], dataset.items.raw_ids[i], f"{r:g}", int(t)])
    warm_items = np.setdiff1d(np.arange(dataset.n_items), cold.items)
    with (folder / "items.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["item", "title", "genres"])
        for i in warm_items:
            out.writerow(
                [
                    dataset.items.raw_ids[i],
                    dataset.items.titles[i],
                    "|".join(dataset.items.genres[i]),
                ]
            )
    return ratings


def top_genres(genres: Sequence[Sequence[str]], top: int = 3) -> list[str]:
    """The ``top`` most frequent genres, most frequent first (ties by name)."""
    counts = Counter(g for gs in genres for g in gs)
    return [g for g, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def genre_text(genres: Sequence[Sequence[str]], top: int = 3) -> str:
    """``"I enjoy Drama, Comedy and Romance movies."`` from the most frequent genres."""
    names = top_genres(genres, top)
    if not names:
        return "I enjoy movies."
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"I enjoy {listed} movies."


def _train(cfg: FedRecConfig, rounds: int, state_root: Path, label: str) -> PlainLoop:
    """Federate ``rounds`` rounds (or reload a finished run's global model from its folder)."""
    _, split = load_split(cfg.data)
    fed = PlainLoop(cfg, split.n_users, init_global(cfg, split.n_items), state_root)
    saved = state_root / "global.npz"
    if saved.is_file():
        with np.load(saved) as arrays:
            fed.global_tensors = {k: arrays[k] for k in arrays.files}
        logger.info("%s: reusing the trained global model in %s", label, saved)
        return fed
    every = list(range(split.n_users))
    for rnd in range(1, rounds + 1):
        seconds = fed.train_round(every, rnd)
        logger.info(
            "%s: round %d/%d trained %d clients in %.1fs", label, rnd, rounds, len(every), seconds
        )
    # So the evaluation can be re-run without training.
    np.savez(saved, **fed.global_tensors)  # type: ignore[arg-type]
    return fed


def _privacy_spent(fed: PlainLoop) -> dict[str, Any]:
    """What the model's training spent: record-level ε (max over clients), user-level report."""
    privacy = fed.cfg.privacy
    out: dict[str, Any] = {"dp_enabled": privacy.dp_enabled, "user_dp": privacy.user_dp}
    if privacy.dp_enabled:
        eps = fed.record_epsilons()
        out.update(
            {
                "unit": "record (one interaction)",
                "epsilon_max": max(eps) if eps else None,
                "delta": privacy.dp_delta,
                "noise_multiplier": privacy.dp_noise_multiplier,
                "max_grad_norm": privacy.dp_max_grad_norm,
                "dp_sample_rate": privacy.dp_sample_rate,
            }
        )
    user = fed.user_privacy()
    if user is not None:
        out["user_level"] = {k: user[k] for k in ("placement", "epsilon", "delta")}
    return out


def _recommender(cfg: FedRecConfig, fed: PlainLoop, dataset: Dataset) -> Recommender:
    """The serving model built from the federation's global tensors (as the API does)."""
    # As from_checkpoint: no fold-in for a model trained under DP.
    fold_in = not (cfg.privacy.dp_enabled or cfg.privacy.user_dp != "off")
    if cfg.text.text_tower == "off":
        return Recommender(
            fed.global_tensors["item_factors"],
            fed.global_tensors["item_bias"],
            dataset.items,
            fold_in=fold_in,
        )
    towers = TextTowers(fed.global_tensors, item_max_length=cfg.text.text_max_length)
    emb = item_text_embeddings(cfg, dataset.items.texts)
    return Recommender(
        fed.global_tensors["item_factors"],
        fed.global_tensors["item_bias"],
        dataset.items,
        towers=towers,
        item_text_emb=emb,
        fold_in=fold_in,
    )


def top_k(scores: np.ndarray, exclude: np.ndarray, k: int = K) -> np.ndarray:
    """The ``k`` best-scored items, best first, excluded ones last (fewer if fewer items)."""
    # A small catalogue (e.g. the held-out items) may have fewer than k candidates; filled
    # up with the excluded ones, every list has the same length and the lists stack.
    return _top_k(scores, exclude, k, fill=True)


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """``a - b`` user by user as the report stores it: mean, SE, 95% interval, users."""
    d = paired_difference(a, b)
    return {"mean": d.mean, "se": d.se, "low": d.low, "high": d.high, "n_users": d.n}


def _summary(tops: list[np.ndarray], relevant: list[np.ndarray]) -> dict[str, float]:
    lists = np.stack(tops)
    return {
        f"ndcg@{K}": float(np.nanmean(ndcg_multi_at_k(lists, relevant))),
        f"hr@{K}": float(np.nanmean(hit_multi_at_k(lists, relevant))),
        "n_users": len(relevant),
    }


class _Tops:
    """Each row's top-k lists and relevant items, per user, rows in the order first added."""

    def __init__(self) -> None:
        self._rows: dict[
            tuple[tuple[str, Any], ...], tuple[Row, list[np.ndarray], list[np.ndarray]]
        ]
        self._rows = {}

    def add(self, row: Row, scores: np.ndarray, exclude: np.ndarray, rel: np.ndarray) -> None:
        """One user's list for ``row`` (its identity), and the items relevant to that user."""
        _, tops, relevant = self._rows.setdefault(tuple(sorted(row.items())), (row, [], []))
        tops.append(top_k(scores, exclude))
        relevant.append(rel)

    def summaries(self) -> list[Row]:
        """Every row with its metrics (:func:`_summary`)."""
        return [{**row, **_summary(t, rel)} for row, t, rel in self._rows.values()]

    def ndcgs(self, row: Row) -> np.ndarray:
        """Each user's NDCG@10 for ``row``."""
        _, tops, relevant = self._rows[tuple(sorted(row.items()))]
        return ndcg_multi_at_k(np.stack(tops), relevant)

    def rows(self) -> list[Row]:
        """The rows' identities, in order."""
        return [row for row, _, _ in self._rows.values()]


# How many of the catalogue's item texts nearest a new user's text its vector is read from.
TEXT_NEIGHBOURS = 20


def user_cold_start(
    full: Dataset, warm: Dataset, cold: ColdSplit, rec_mf: Recommender, rec_hy: Recommender
) -> dict[str, Any]:
    """NDCG/HR@10 of each method for held-out users (see the module docstring).

    ``rows``: one row a method (:mod:`fedrec.simulations.coldstart_rows`);
    ``vs_popularity``: each served answer minus popularity, user by user;
    ``skipped_users``: held-out users with too few liked items to be asked.
    """
    pop = np.bincount(warm.interactions.items, minlength=warm.n_items).astype(np.float64)
    tops = _Tops()
    towers = rec_hy.towers
    assert towers is not None
    users = _cold_users_items(full, warm, cold)
    skipped = int(cold.users.size) - len(users)
    served_weight = rec_hy.fold_in_weight if rec_hy.fold_in_enabled else None
    for user in users:
        given5 = user.given
        rest = np.setdiff1d(user.every, given5)

        def add(
            row: Row, scores: np.ndarray, ex: np.ndarray = given5, rel: np.ndarray = rest
        ) -> None:
            tops.add(row, scores, ex, rel)

        add({"method": "popularity"}, pop)
        add({"method": "item-bias", "model": "hybrid"}, rec_hy.b)
        for n in GIVEN:
            g = given5[:n]

            def rank(row: Row, model: Recommender, user: np.ndarray, n: int = n) -> None:
                add({**row, "given": n}, model.q @ user + model.b)

            mf_mean = rec_mf.q[g].mean(0)
            rank({"method": "mean-of-liked", "model": "mf"}, rec_mf, mf_mean)
            rank({"method": "fold-in", "model": "mf"}, rec_mf, rec_mf.fold_in(g, start=mf_mean))
            rank({"method": "mean-of-liked", "model": "hybrid"}, rec_hy, rec_hy.q[g].mean(0))
            user_head = towers.user_part(rec_hy.emb[g]).mean(0)
            rank({"method": "user-head", "model": "hybrid"}, rec_hy, user_head)
            scores, _, _ = rec_hy.user_scores(g)
            served = {"method": "served", "model": "hybrid", "given": n}
            add({**served, "fold_in_weight": served_weight}, scores)
            if rec_hy.fold_in_enabled:
                u = rec_hy.fold_in(g, start=rec_hy.liked_vector(g))
                for w in FOLD_IN_WEIGHTS:
                    row = {"method": "fold-in-weight", "model": "hybrid", "given": n, "weight": w}
                    add(row, rec_hy.b + w * (rec_hy.q @ u))
        text = genre_text([warm.items.genres[i] for i in given5])
        scores, _, _ = rec_hy.user_scores(np.zeros(0, np.int64), text)
        add({"method": "served", "model": "hybrid", "text": True}, scores)
        near, weights = rec_hy.text_neighbours(text, TEXT_NEIGHBOURS)
        u_near = rec_hy.fold_in(near, start=weights @ towers.user_part(rec_hy.emb[near]))
        neighbours = {"method": "text-neighbours", "model": "hybrid", "text": True}
        add({**neighbours, "neighbours": TEXT_NEIGHBOURS}, rec_hy.q @ u_near + rec_hy.b)
    logger.info("user cold start: %d users evaluated, %d skipped (< 5 liked)", len(users), skipped)
    # The served answers against popularity, user by user (the same users and relevant items).
    popularity = tops.ndcgs({"method": "popularity"})
    paired = [
        {**row, **_paired(tops.ndcgs(row), popularity)}
        for row in tops.rows()
        if row["method"] == "served"
    ]
    return {"rows": tops.summaries(), "vs_popularity": paired, "skipped_users": skipped}


EASE_L2 = 500.0  # EASE's ridge weight; 50/200/500 were tried, 500 scored best here


@dataclass(frozen=True)
class ColdUser:
    """One evaluated held-out user's warm items (warm-catalogue indices)."""

    given: np.ndarray  # the first 5 liked, in time order
    every: np.ndarray  # all it rated
    liked: np.ndarray  # all it rated >= LIKED_RATING


def _cold_users_items(full: Dataset, warm: Dataset, cold: ColdSplit) -> list[ColdUser]:
    """Per evaluated held-out user, its warm items (see :class:`ColdUser`).

    Users with fewer than 5 liked warm items, or no other warm item, are left out.
    """
    warm_index = {raw: i for i, raw in enumerate(warm.items.raw_ids)}
    inter = full.interactions
    out = []
    for u in cold.users:
        rows = np.flatnonzero(inter.users == u)
        rows = rows[np.argsort(inter.timestamps[rows], kind="stable")]
        items = [warm_index.get(full.items.raw_ids[i]) for i in inter.items[rows]]
        pairs = [(i, r) for i, r in zip(items, inter.ratings[rows], strict=True) if i is not None]
        liked = [i for i, r in pairs if r >= LIKED_RATING]
        every = np.unique(np.array([i for i, _ in pairs], np.int64))
        given = np.array(liked[: max(GIVEN)], np.int64)
        if given.size < max(GIVEN) or np.setdiff1d(every, given).size == 0:
            continue
        out.append(ColdUser(given, every, np.unique(np.array(liked, np.int64))))
    return out


# The centralized references that add popularity to their similarity score, log(1 + count)
# + λ · similarity: each weight is tried and the best on the evaluated users is reported (an
# optimistic bound, not a tuned method: it is chosen on the users it is scored on).
KNN_POP_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
GENRE_POP_WEIGHTS = (0.05, 0.1, 0.25, 0.5, 1.0)
RANDOM_GIVEN = 3  # the liked items given in the rows of draw "random" (of max(GIVEN) drawn)


def centralized_references(
    full: Dataset, warm: Dataset, cold: ColdSplit, *, seed: int
) -> list[Row]:
    """Item-kNN / EASE / genre matches on the warm matrix for the held-out users.

    See the module docstring. Each row's ``draw`` says which liked items it was given;
    its ratio is against the popularity row of the same draw (their own relevant items).
    """
    x = np.zeros((warm.n_users, warm.n_items), np.float64)
    x[warm.interactions.users, warm.interactions.items] = 1.0
    gram = x.T @ x
    pop = x.sum(0)
    log_pop = np.log1p(pop)
    norms = np.sqrt(np.diag(gram)) + 1e-12
    cosine = gram / norms[:, None] / norms[None, :]
    np.fill_diagonal(cosine, 0.0)
    inv = np.linalg.inv(gram + EASE_L2 * np.eye(warm.n_items))
    ease = -inv / np.diag(inv)
    np.fill_diagonal(ease, 0.0)
    genres = sorted({g for gs in warm.items.genres for g in gs})
    has_genre = np.array(
        [[g in gs for g in genres] for gs in warm.items.genres], np.float64
    ).reshape(warm.n_items, len(genres))
    rng = np.random.default_rng([seed, 13])
    draw = np.random.default_rng([seed, 17])  # its own stream: the ceiling's halves stay put
    tops = _Tops()

    def sweep(
        row: Row, weights: Sequence[float], sim: np.ndarray, ex: np.ndarray, rel: np.ndarray
    ) -> None:
        for lam in weights:
            tops.add({**row, "weight": lam}, log_pop + lam * sim, ex, rel)

    for user in _cold_users_items(full, warm, cold):
        liked, every = user.given, user.every
        rest = np.setdiff1d(every, liked)
        tops.add({"method": "popularity", "draw": FIRST}, pop, liked, rest)
        for n in GIVEN[1:]:
            profile = np.zeros(warm.n_items)
            profile[liked[:n]] = 1.0
            first = {"draw": FIRST, "given": n}
            tops.add({"method": "item-knn", **first}, profile @ cosine, liked, rest)
            tops.add({"method": "ease", "l2": EASE_L2, **first}, profile @ ease, liked, rest)
            knn_pop = {"method": "item-knn-log-popularity", **first}
            sweep(knn_pop, KNN_POP_WEIGHTS, profile @ cosine, liked, rest)
        # The text's own information: the genres named in the served text (genre_text).
        named = top_genres([warm.items.genres[i] for i in liked])
        match = has_genre[:, [genres.index(g) for g in named]].sum(1)
        genre_pop = {"method": "genre-log-popularity", "draw": FIRST, "text": True}
        sweep(genre_pop, GENRE_POP_WEIGHTS, match, liked, rest)
        # A friendlier protocol: 5 of the user's liked items drawn at random (the first ones
        # are mostly the popular films every new user was asked to rate).
        drawn = draw.permutation(user.liked)[: max(GIVEN)]
        rest_drawn = np.setdiff1d(every, drawn)
        at_random = {"draw": RANDOM, "given": RANDOM_GIVEN}
        tops.add({"method": "popularity", **at_random}, pop, drawn, rest_drawn)
        profile = np.zeros(warm.n_items)
        profile[drawn[:RANDOM_GIVEN]] = 1.0
        knn_pop = {"method": "item-knn-log-popularity", **at_random}
        sweep(knn_pop, KNN_POP_WEIGHTS, profile @ cosine, drawn, rest_drawn)
        shuffled = rng.permutation(every)
        known, hidden = shuffled[: every.size // 2], shuffled[every.size // 2 :]
        profile = np.zeros(warm.n_items)
        profile[known] = 1.0
        tops.add({"method": "popularity", "draw": CEILING}, pop, known, hidden)
        tops.add({"method": "ease", "draw": CEILING}, profile @ ease, known, hidden)
    out: list[Row] = []
    sweeps: dict[tuple[tuple[str, Any], ...], tuple[Row, dict[float, dict[str, float]]]] = {}
    for row in tops.summaries():
        metrics = metrics_of(row)
        identity = {k: v for k, v in row.items() if k not in metrics}
        lam = identity.pop("weight", None)
        if lam is None:
            out.append(row)
            continue
        key = tuple(sorted(identity.items()))
        if key not in sweeps:  # the sweep's rows become its best one, where its first stood
            sweeps[key] = (identity, {})
            out.append(identity)
        sweeps[key][1][lam] = metrics
    best = {id(base): _best_weight(base, by_weight) for base, by_weight in sweeps.values()}
    return [best.get(id(row), row) for row in out]


def _best_weight(row: Row, by_weight: dict[float, dict[str, float]]) -> Row:
    """The best-scoring weight of a swept reference row, with the grid it came from."""
    best = max(by_weight, key=lambda lam: by_weight[lam][f"ndcg@{K}"])
    return {**row, "weight": best, "grid": list(by_weight), **by_weight[best]}


def _user_factors(cfg: FedRecConfig, fed: PlainLoop) -> dict[int, np.ndarray]:
    """Each warm user's personalised private factor, computed client by client."""
    out: dict[int, np.ndarray] = {}
    for pid in range(fed.num_partitions):
        data = load_client_data(cfg, pid, fed.num_partitions)
        state = ClientStateStore(fed.state_root / f"partition-{pid}").load()
        model = build_model(cfg, data, fed.global_tensors, state, seed=client_seed(cfg, pid))
        finetune_users(
            model,
            data.train_users,
            data.train_items,
            train=cfg.train,
            epochs=cfg.federation.personalize_epochs,
            seed=client_seed(cfg, pid),
        )
        for j, user in enumerate(data.users):
            out[int(user)] = model.user.weight[j].detach().numpy().copy()
    return out


def item_cold_start(
    cfg: FedRecConfig,
    full: Dataset,
    warm: Dataset,
    cold: ColdSplit,
    fed_hy: PlainLoop,
    rec_hy: Recommender,
    *,
    seed: int,
    mf: tuple[FedRecConfig, PlainLoop, Recommender] | None = None,
) -> list[Row]:
    """Ranking only the held-out items for warm users, by text alone vs baselines.

    The served placement (``Recommender.add_item``) against the hybrid's item head alone,
    and, given ``mf`` (the MF-only model), the same ridge text map fitted on MF's table.
    """
    n_before = rec_hy.n_items
    for i in cold.items:
        rec_hy.add_item(f"new-{full.items.raw_ids[i]}", full.items.titles[i], full.items.genres[i])
    new_idx = np.arange(n_before, rec_hy.n_items)
    q_new, b_new = rec_hy.q[new_idx], rec_hy.b[new_idx]
    raw_new = rec_hy.emb[new_idx]
    assert rec_hy.towers is not None
    head_q, head_b = rec_hy.towers.item_part(raw_new)
    factors = _user_factors(cfg, fed_hy)
    mf_factors: dict[int, np.ndarray] = {}
    if mf is not None and n_before >= min_items(raw_new.shape[1]):
        cfg_mf, fed_mf, rec_mf = mf
        mf_map = fit_text_map(rec_hy.emb[:n_before], rec_mf.q, rec_mf.b)
        mf_q, mf_b = mf_map.place(raw_new)
        mf_factors = _user_factors(cfg_mf, fed_mf)
    warm_user = {raw: u for u, raw in enumerate(warm.user_raw_ids)}
    pos_of = {int(i): k for k, i in enumerate(cold.items)}
    inter = full.interactions
    rng = np.random.default_rng([seed, 5])
    tops = _Tops()
    evaluated = 0
    train_items = warm.interactions
    warm_emb = item_text_embeddings(cfg, warm.items.texts)
    full_user = {raw: u for u, raw in enumerate(full.user_raw_ids)}
    for raw, wu in warm_user.items():
        u = full_user[raw]
        mask = (inter.users == u) & np.isin(inter.items, cold.items)
        rel = np.array(sorted({pos_of[int(i)] for i in inter.items[mask]}), np.int64)
        if rel.size == 0:
            continue
        evaluated += 1
        none = np.zeros(0, np.int64)
        placement = "text-map" if rec_hy.text_map else "item-head"
        served = {"method": placement, "model": "hybrid", "served": True}
        tops.add(served, q_new @ factors[wu] + b_new, none, rel)
        if rec_hy.towers.has_item_head:
            tops.add(
                {"method": "item-head", "model": "hybrid"}, head_q @ factors[wu] + head_b, none, rel
            )
        if mf_factors:
            tops.add({"method": "text-map", "model": "mf"}, mf_q @ mf_factors[wu] + mf_b, none, rel)
        profile = warm_emb[train_items.items[train_items.users == wu]].mean(0)
        tops.add({"method": "content"}, raw_new @ profile, none, rel)
        tops.add({"method": "random"}, rng.random(len(new_idx)), none, rel)
    logger.info("item cold start: %d warm users rated held-out items", evaluated)
    return tops.summaries()


def _warm_users(
    fed_mf: PlainLoop, fed_hy: PlainLoop
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Both models' warm-user metrics and the hybrid's paired NDCG difference to MF only.

    Both federations hold the same warm users in the same partitions, so their per-user
    evaluations line up user by user.
    """
    evals_mf, n_items = fed_mf.user_evals(k=K)
    evals_hy, _ = fed_hy.user_evals(k=K)
    if len(evals_mf) != len(evals_hy):
        raise RuntimeError(f"{len(evals_mf)} vs {len(evals_hy)} warm users: not paired")
    ndcg = [ndcg_at_k(np.array([e.rank_full for e in ev]), K) for ev in (evals_mf, evals_hy)]
    return (
        summarize(evals_mf, k=K, n_items=n_items),
        summarize(evals_hy, k=K, n_items=n_items),
        _paired(ndcg[1], ndcg[0]),
    )


def _setup(
    full: Dataset,
    fraction: float,
    seed: int,
    overrides: dict[str, Any] | None,
    work: Path,
    runs_dir: Path,
) -> tuple[ColdSplit, Dataset, FedRecConfig, FedRecConfig]:
    """The held-out split of ``seed``, the warm data set written under ``work``, both configs."""
    cold = choose_cold(full.n_users, full.n_items, fraction=fraction, seed=seed)
    ratings = write_warm_dataset(full, cold, work / "warm-data")
    common = {
        **TRAIN_SETTINGS,
        **(overrides or {}),
        "seed": seed,
        "dataset": "generic",
        "data-path": str(ratings),
        "output-dir": str(runs_dir),
    }
    cfg_mf = resolve_config({}, {**common, "text-tower": "off", "run-name": f"{work.name}-mf"})
    cfg_hy = resolve_config({}, {**common, "run-name": f"{work.name}-hy"})
    if cfg_hy.text.text_tower == "off":
        cfg_hy = cfg_hy.replace(**{"text-tower": "heads"})
    warm, _ = load_split(cfg_hy.data)
    return cold, warm, cfg_mf, cfg_hy


def _train_and_evaluate(
    cold: ColdSplit,
    warm: Dataset,
    cfg_mf: FedRecConfig,
    cfg_hy: FedRecConfig,
    rounds: int,
    work: Path,
    full: Dataset,
    *,
    seed: int,
    timings: dict[str, float],
    notes: list[str],
    label: str = "",
) -> dict[str, Any]:
    """Train (or reuse) both models in ``work`` and evaluate warm users, new users, new items."""
    feds = {}
    for model, cfg, folder in (("mf", cfg_mf, "clients-mf"), ("hybrid", cfg_hy, "clients-hybrid")):
        reused = (work / folder / "global.npz").is_file()
        t0 = time.perf_counter()
        name = MODEL_LABELS[model]
        feds[model] = _train(cfg, rounds, work / folder, f"{label}{name}")
        if reused:
            notes.append(
                f"{label}{name} model reused from {work / folder} (training not timed here)"
            )
        else:
            timings[f"{label}train {name} (s)"] = time.perf_counter() - t0
    fed_mf, fed_hy = feds["mf"], feds["hybrid"]
    warm_mf, warm_hy, warm_diff = _warm_users(fed_mf, fed_hy)
    rec_mf = _recommender(cfg_mf, fed_mf, warm)
    rec_hy = _recommender(cfg_hy, fed_hy, warm)
    return {
        "privacy": {"mf": _privacy_spent(fed_mf), "hybrid": _privacy_spent(fed_hy)},
        "warm_mf": warm_mf,
        "warm_hy": warm_hy,
        "warm_diff": warm_diff,
        "user_cold_start": user_cold_start(full, warm, cold, rec_mf, rec_hy),
        "item_cold_start": item_cold_start(
            cfg_hy, full, warm, cold, fed_hy, rec_hy, seed=seed, mf=(cfg_mf, fed_mf, rec_mf)
        ),
    }


def _repeat_summary(run: dict[str, Any]) -> dict[str, float]:
    """One run's headline numbers (NDCG@10), as the repeats table lists them.

    Keys are :data:`~fedrec.simulations.coldstart_rows.REPEAT_COLUMNS`'.
    """
    users, items = run["user_cold_start"]["rows"], run["item_cold_start"]
    ndcg = f"ndcg@{K}"
    pop = find(users, method="popularity")[ndcg]
    served3 = find(users, method="served", given=GOAL_GIVEN)
    out = {
        "warm_mf": run["warm_mf"][f"{ndcg}_full"],
        "warm_hybrid": run["warm_hy"][f"{ndcg}_full"],
        "warm_diff": run["warm_diff"]["mean"],
        "new_user_liked": served3[ndcg] / pop,
        "new_user_text": find(users, method="served", text=True)[ndcg] / pop,
        "new_items": find(items, served=True)[ndcg] / find(items, method="random")[ndcg],
    }
    for key, best in (
        ("best_reference_liked", best_reference(run["references"], given=GOAL_GIVEN)),
        ("best_reference_text", best_reference(run["references"], text=True)),
    ):
        if best is not None:
            out[key] = best[1]
    return out


def run_coldstart_benchmark(
    *,
    output_dir: Path,
    runs_dir: Path,
    rounds: int = 8,
    fraction: float = 0.1,
    overrides: dict[str, Any] | None = None,
    name: str = "coldstart",
    work_dir: Path | None = None,
    repeats: int = 1,
) -> dict[str, Any]:
    """Train MF-only and hybrid federations on the warm data and evaluate cold start.

    ``repeats`` > 1 trains both models that many times in all (``repeat-N/`` folders) and
    reports each run's headline numbers and their mean: under DP with fresh noise, on the
    same split and seeds (one noise draw moves the numbers more than the differences being
    judged); without DP, with the next seeds (each its own held-out users and items,
    partitions and initialisation).
    """
    fresh = check_repeats(overrides, repeats)
    base_cfg = resolve_config({}, overrides or {})
    t_start = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    full = load_dataset(base_cfg.data)
    work = work_dir or runs_dir / f"bench-coldstart-{stamp}"
    timings: dict[str, float] = {}
    reused: list[str] = []
    runs, repeats_out = [], []
    references: dict[int, list[Row]] = {}
    for r in range(1, repeats + 1):
        # Fresh DP noise: the same split and seeds again. No noise: the next seed.
        seed = base_cfg.data.seed + (0 if fresh else r - 1)
        folder = work if r == 1 else work / f"repeat-{r}"
        setup = _setup(full, fraction, seed, overrides, folder, runs_dir)
        run = _train_and_evaluate(
            *setup,
            rounds,
            folder,
            full,
            seed=seed,
            timings=timings,
            notes=reused,
            label="" if r == 1 else f"repeat {r}: ",
        )
        if seed not in references:  # they depend on the split only, not on the training
            references[seed] = centralized_references(full, setup[1], setup[0], seed=seed)
        run["references"] = references[seed]
        runs.append((setup, run))
        repeats_out.append({"seed": float(seed), **_repeat_summary(run)})
    (cold, warm, cfg_mf, cfg_hy), run = runs[0]
    privacy, users, items = run["privacy"], run["user_cold_start"], run["item_cold_start"]
    warm_mf, warm_hy, warm_diff = run["warm_mf"], run["warm_hy"], run["warm_diff"]
    result = {
        "benchmark": name,
        "created_at": timestamp(),
        "machine": machine_stamp(),
        "protocol": {
            "dataset": base_cfg.data.dataset,
            "held_out_fraction": fraction,
            "cold_users": int(cold.users.size),
            "cold_items": int(cold.items.size),
            "rounds": rounds,
            "train_settings": {**TRAIN_SETTINGS, **(overrides or {})},
            "loop": "plain single-process federation (same client + aggregation code as Flower)",
            "k": K,
            "given": list(GIVEN),
            "random_liked_given": RANDOM_GIVEN,
            "goals": {
                "liked": {"given": GOAL_GIVEN, "ratio": GOAL_3_LIKED},
                "text": {"ratio": GOAL_TEXT},
            },
            "fold_in_weight": FOLD_IN_WEIGHT,
            "fold_in_weight_chosen_on_seed": WEIGHT_CHOSEN_ON_SEED,
        },
        "privacy": privacy,
        "user_cold_start": users,
        "item_cold_start": items,
        "user_cold_start_centralized_references": run["references"],
        "warm_users": {
            "mf": {k: warm_mf[k] for k in (f"ndcg@{K}_full", f"hr@{K}_full", "n_users")},
            "hybrid": {k: warm_hy[k] for k in (f"ndcg@{K}_full", f"hr@{K}_full", "n_users")},
        },
        "warm_users_paired": warm_diff,
        "repeats": repeats_out if repeats > 1 else [],
        "repeats_vary": "dp-noise" if fresh else "seed",
        "timings": {**timings, "total (s)": time.perf_counter() - t_start},
        "notes": reused,
    }
    save(result, output_dir, name, kind="coldstart")
    return result
