"""What an honest-but-curious server learns from one client's update, with and without defenses.

The server runs the protocol faithfully and looks at what it receives. From one client's
update of the shared item model (``item_factors`` ``Q`` and ``item_bias`` ``b``, sent as
whole dense tables) it tries to infer

- **item membership**: which items the client trained on (its interactions), scored per
  item and measured as a ROC AUC of the scores of the client's training items (positives)
  against the items it never touched (negatives; its held-out validation and test items
  belong to neither);
- **ratings**: among the items it did touch, which it rated high (>= 4) rather than low
  (<= 3), again as an AUC.

Why the update leaks membership: local BPR training moves only the rows of the items in a
batch, the client's positives up along its user factor ``p_u`` and the uniformly drawn
negatives down along it. Every touched row moves along (nearly) one direction, ``(p_u, 1)``
in ``[Q | b]`` coordinates, positives with one sign and negatives with the other. Attacks:

- ``factor-row-norm``: ``||dQ_i||`` (naive: drawn negatives move too);
- ``bias-abs``: ``|db_i|``;
- ``bias-signed``: ``db_i`` (positives are pushed up, negatives down);
- ``direction``: the projection of row ``[dQ_i, db_i]`` on the update's top right singular
  vector, oriented so that its bias component is positive. The server needs nothing but
  the update; averaging over all ``d + 1`` coordinates of a row makes it the most robust
  to noise.

Why the update says little about ratings: the model is trained on implicit positives,
every rating alike, so the gradient of an item does not depend on the rating. Whatever
shows up can only come through the model (an item the user liked may already fit better).
Attacks: ``update-magnitude`` (``-||[dQ_i, db_i]||``, a smaller step for a better-fitting
item), ``taste`` (the global item factor projected on the user direction estimated from
the update); and, for reference, ``public-prior``: the global model's item bias, which the
server has without any update at all.

Defenses, all applied to updates computed by the project's own client code
(:func:`fedrec.client.task.local_train` with the real configs):

- none (the no-DP scenario, and the defaults with DP off);
- record-level DP-SGD (Opacus, the DP scenario) at several noise multipliers, with the
  epsilon the client's own accountant reports;
- user-level DP with local noise (:mod:`fedrec.shared.privacy.user`: clip the whole update to
  ``C``, add ``N(0, (sigma C)^2)`` to every coordinate before sending), and central
  user-level DP, where the server itself adds the noise and therefore sees the clipped
  update;
- secure aggregation (SecAgg+): the server sees only the sum of ``K`` clients' updates,
  with and without distributed user-level noise (each client adds ``N(0, (sigma C)^2 / K)``).

What counts is what the update adds to what the server knows anyway. A user's items tend
to be popular ones, so the global item bias alone already "finds" them once the model is
trained; and a sum of K updates reveals popularity whether or not the target is in it.
Each result is therefore reported next to a control: the public prior for a single
update, the same cohort with the target swapped for another client under SecAgg+ (and the
paired per-client gain).

Two attacked rounds, by default: round 1 (the seeded initial model, fresh user factors:
the server knows nothing yet, so the update is all it has) and round 4, after three
rounds of the no-DP federation over all clients (:class:`PlainLoop`), when the
federated model has about reached the centralized one (docs/benchmarks/quality.md) and
the user factors carry over. The attacked updates are trained from copies of the clients'
states and never feed the federation. Noise here is seeded, for reproducible numbers; the
attacker never uses the seed.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedrec.client.dataview import ClientData, client_seed, load_client_data
from fedrec.client.state import ClientStateStore
from fedrec.client.task import local_train
from fedrec.shared.config import FedRecConfig, PrivacyConfig, resolve_config
from fedrec.shared.data import load_dataset, load_split
from fedrec.shared.evaluation import auc, mean_and_se, tpr_at_fpr
from fedrec.shared.models.factory import item_text_embeddings
from fedrec.shared.models.initial import USER_HEAD_W, init_global
from fedrec.shared.privacy import (
    DPRandom,
    SeededRandom,
    clip_update,
    epsilon_of,
    gaussian_noise_like,
    noise_std,
    privatize,
    resolve_delta,
    update_norm,
    user_epsilon,
)
from fedrec.simulation.plain_loop import PlainLoop, sample_partitions
from fedrec.simulation.scenarios import load_scenario
from fedrec.simulations.measure import machine_stamp
from fedrec.simulations.report import save
from fedrec.simulations.result_keys import PRIOR

logger = logging.getLogger(__name__)

Update = dict[str, np.ndarray]

MEMBERSHIP_ATTACKS = ("factor-row-norm", "bias-abs", "bias-signed", "direction")
# The hybrid's user head: only positives pass through it (docs/privacy.md).
TEXT_HEAD_ATTACK = "user-head-text"
RATING_ATTACKS = ("update-magnitude", "taste")
HIGH_RATING = 4.0  # rated >= 4: "high"; <= 3: "low"

NODP_SCENARIO = "ml100k-nodp"
DP_SCENARIO = "ml100k-dp"
# Noise multipliers whose 5-round runs of the DP scenario (full batch, 2 steps a round)
# reach about 8, 4 and 1 per record; 2.1 is the product's default (7.62).
RECORD_SIGMAS = (2.1, 3.7, 13.0)
LOW_FPR = 0.01  # membership: the true-positive rate at this false-positive rate
USER_SIGMAS = (0.01, 0.1, 1.0)
SECAGG_SIZES = (10, 100)


# ------------------------------------------------------------------- attacks


def _rows(delta: Mapping[str, np.ndarray]) -> np.ndarray:
    """``[dQ | db]`` as one float64 matrix ``[n_items, dim + 1]``."""
    q = np.asarray(delta["item_factors"], dtype=np.float64)
    b = np.asarray(delta["item_bias"], dtype=np.float64)
    return np.concatenate([q, b[:, None]], axis=1)


def user_direction(delta: Mapping[str, np.ndarray]) -> np.ndarray:
    """The update's dominant row direction in ``[Q | b]`` coordinates (unit, bias part >= 0).

    Touched rows move along ``+-(p_u, 1)``; the top right singular vector of the row matrix
    (the top eigenvector of its small ``(dim + 1)^2`` Gram matrix, which is far cheaper than
    an SVD of the whole table) estimates that direction from the update alone. Its sign is
    fixed a priori: a client's positives get their bias raised.
    """
    rows = _rows(delta)
    _, vectors = np.linalg.eigh(rows.T @ rows)
    v = vectors[:, -1]
    return v if v[-1] >= 0 else -v


def membership_scores(
    delta: Mapping[str, np.ndarray],
    direction: np.ndarray | None = None,
    item_text: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-item scores (higher: more likely one of the client's items), one per attack.

    ``direction``: :func:`user_direction` of ``delta`` when already computed.
    ``item_text``: the catalogue's public text embeddings ``[n_items, 384]``; with them and
    a hybrid update, the ``user-head-text`` attack scores item ``j`` by
    ``||ΔW_u (e_j - mean e)||``. The user head is trained on the positives' texts only
    (``ΔW_u = Σ g_i e_iᵀ`` over them), so its change points at the texts the user liked.
    """
    rows = _rows(delta)
    v = user_direction(delta) if direction is None else direction
    scores = {
        "factor-row-norm": np.linalg.norm(rows[:, :-1], axis=1),
        "bias-abs": np.abs(rows[:, -1]),
        "bias-signed": rows[:, -1],
        "direction": rows @ v,
    }
    if item_text is not None and USER_HEAD_W in delta:
        centred = np.asarray(item_text, np.float64) - np.mean(item_text, axis=0)
        head = np.asarray(delta[USER_HEAD_W], np.float64)
        scores[TEXT_HEAD_ATTACK] = np.linalg.norm(centred @ head.T, axis=1)
    return scores


def membership_prior(shared: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-item scores the server has without any update: the global item bias (popularity).

    The reference for the membership attacks: a user's items tend to be popular ones, and a
    trained global model knows which items are popular.
    """
    return np.asarray(shared["item_bias"], dtype=np.float64)


def rating_scores(
    delta: Mapping[str, np.ndarray],
    shared: Mapping[str, np.ndarray],
    direction: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-item scores (higher: more likely rated high), for the items the client touched.

    ``shared`` is the global model the update was trained from (the server has it).
    """
    rows = _rows(delta)
    v = user_direction(delta) if direction is None else direction
    q = np.asarray(shared["item_factors"], dtype=np.float64)
    return {
        "update-magnitude": -np.linalg.norm(rows, axis=1),
        "taste": q @ v[:-1],
        PRIOR: np.asarray(shared["item_bias"], dtype=np.float64),
    }


# ------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class Truth:
    """What the attacker tries to recover about one client (one user)."""

    items: np.ndarray  # the client's training items (unique)
    ratings: np.ndarray  # the user's rating of each of ``items``
    held_out: np.ndarray  # its validation/test items: neither positive nor negative
    n_items: int

    def membership_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """(mask of the items that count, label per counted item: trained on or not)."""
        counted = np.ones(self.n_items, dtype=bool)
        counted[np.setdiff1d(self.held_out, self.items)] = False
        labels = np.zeros(self.n_items, dtype=bool)
        labels[self.items] = True
        return counted, labels[counted]


def truth_of(data: ClientData, ratings_by_item: Mapping[int, float]) -> Truth:
    """The truth about a one-user client: its training items, their ratings, held-out items."""
    items = np.unique(data.train_items)
    held = np.setdiff1d(data.seen[0], items) if data.seen else np.zeros(0, dtype=np.int64)
    return Truth(
        items=items,
        ratings=np.array([ratings_by_item[int(i)] for i in items], dtype=np.float64),
        held_out=held,
        n_items=data.n_items,
    )


def membership_aucs(scores: Mapping[str, np.ndarray], truth: Truth) -> dict[str, float]:
    """AUC of each attack's scores: the client's items against the items it never touched."""
    counted, labels = truth.membership_labels()
    return {name: auc(s[counted], labels) for name, s in scores.items()}


def membership_tprs(scores: Mapping[str, np.ndarray], truth: Truth) -> dict[str, float]:
    """TPR at :data:`LOW_FPR` of each attack's scores, on the same items as the AUC."""
    counted, labels = truth.membership_labels()
    return {name: tpr_at_fpr(s[counted], labels, LOW_FPR) for name, s in scores.items()}


def rating_aucs(scores: Mapping[str, np.ndarray], truth: Truth) -> dict[str, float]:
    """AUC of each attack's scores over the touched items: rated high against rated low."""
    high = truth.ratings >= HIGH_RATING
    return {name: auc(s[truth.items], high) for name, s in scores.items()}


# ------------------------------------------------------------------- defenses


def delta_of(update: Mapping[str, np.ndarray], shared: Mapping[str, np.ndarray]) -> Update:
    """The update as a difference to the global model it was trained from."""
    return {k: np.asarray(update[k], dtype=np.float32) - shared[k] for k in shared}


def local_user_dp(
    delta: Mapping[str, np.ndarray], clip: float, sigma: float, rng: DPRandom
) -> Update:
    """The update a client sends under ``user-dp = local``: clipped, plus ``N(0, (sigma clip)^2)``.

    The project's own :func:`fedrec.shared.privacy.privatize`, with a seeded ``rng`` here.
    """
    noised, _ = privatize(delta, clip, noise_std("local", sigma, clip), rng)
    return noised


def secure_sum(deltas: Sequence[Mapping[str, np.ndarray]]) -> Update:
    """What the server learns under secure aggregation: the sum of the updates."""
    keys = list(deltas[0])
    return {k: np.sum([np.asarray(d[k], dtype=np.float64) for d in deltas], axis=0) for k in keys}


def _user_epsilon(privacy: PrivacyConfig, sigma: float, releases: int, delta: float) -> float:
    """Epsilon of ``releases`` Gaussian releases of a clipped update, q = 1 (the server's view)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the smallest alpha" at tiny sigma
        return user_epsilon(
            sigma, q=1.0, rounds=releases, delta=delta, accountant=privacy.user_accountant
        )


# ------------------------------------------------------------------- benchmark


class _Row:
    """Collects one defense setting's per-client AUCs and the time spent on it."""

    def __init__(
        self, defense: str, setting: str, item_text: np.ndarray | None = None, **extra: Any
    ) -> None:
        self.defense, self.setting, self.extra = defense, setting, extra
        self.item_text = item_text
        self.membership: dict[str, list[float]] = {}
        self.membership_tpr: dict[str, list[float]] = {}
        self.rating: dict[str, list[float]] = {}
        self.control: dict[str, list[float]] = {}
        self.seconds = 0.0

    def attack(
        self,
        seen: Mapping[str, np.ndarray],
        shared: Mapping[str, np.ndarray],
        truth: Truth,
        *,
        control: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Attack what the server saw; ``control``: the same view without this client."""
        v = user_direction(seen)
        scores = {**membership_scores(seen, v, self.item_text), PRIOR: membership_prior(shared)}
        for name, value in membership_aucs(scores, truth).items():
            self.membership.setdefault(name, []).append(value)
        for name, value in membership_tprs(scores, truth).items():
            self.membership_tpr.setdefault(name, []).append(value)
        for name, value in rating_aucs(rating_scores(seen, shared, v), truth).items():
            self.rating.setdefault(name, []).append(value)
        if control is not None:
            control_scores = membership_scores(control, item_text=self.item_text)
            for name, value in membership_aucs(control_scores, truth).items():
                self.control.setdefault(name, []).append(value)

    def result(self, attacked_round: int, seed: int) -> dict[str, Any]:
        membership = {k: mean_and_se(v) for k, v in self.membership.items()}
        rating = {k: mean_and_se(v) for k, v in self.rating.items()}
        control = {k: mean_and_se(v) for k, v in self.control.items()}
        gap = {  # paired per client: with the client's update minus without it
            k: mean_and_se([a - b for a, b in zip(self.membership[k], v, strict=True)])
            for k, v in self.control.items()
        }
        attacks = [k for k in (*MEMBERSHIP_ATTACKS, TEXT_HEAD_ATTACK) if k in membership]
        strongest = max(attacks, key=lambda k: _nan_low(membership[k]["mean"]))
        by_update = max(RATING_ATTACKS, key=lambda k: _nan_low(rating[k]["mean"]))
        return {
            "round": attacked_round,
            "defense": self.defense,
            "setting": self.setting,
            **self.extra,
            "membership_auc": membership,
            "membership_tpr_at_low_fpr": {
                k: mean_and_se(v) for k, v in self.membership_tpr.items()
            },
            "low_fpr": LOW_FPR,
            "rating_auc": rating,
            "membership_auc_without_client": control or None,
            "membership_auc_gain": gap or None,
            "strongest_membership_attack": strongest,
            "strongest_rating_attack": by_update,
            "clients": membership[strongest]["n"],
            "rating_clients": rating[by_update]["n"],
            "seed": seed,
            "wall_s": self.seconds,
        }


def _nan_low(x: float) -> float:
    return -math.inf if math.isnan(x) else x


class _Timer:
    def __init__(self, row: _Row) -> None:
        self.row = row

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.row.seconds += time.perf_counter() - self.t0


@dataclass
class _Client:
    pid: int
    data: ClientData
    truth: Truth


def _train_update(
    cfg: FedRecConfig,
    client: _Client,
    shared: dict[str, np.ndarray],
    state_root: Path,
    scratch: Path,
    server_round: int,
) -> tuple[Update, float | None, list[tuple[float, float, int]]]:
    """One real local round of ``client`` from a copy of its state (the federation's stays)."""
    shutil.rmtree(scratch, ignore_errors=True)
    copy = ClientStateStore(state_root / f"partition-{client.pid}").copy_to(scratch)
    update, result = local_train(
        cfg,
        client.data,
        shared,
        copy,
        server_round=server_round,
        seed=client_seed(cfg, client.pid),
        device=torch.device("cpu"),
    )
    shutil.rmtree(scratch, ignore_errors=True)
    return delta_of(update, shared), result.epsilon, list(result.accountant_history)


def _ratings_by_user(cfg: FedRecConfig) -> dict[int, dict[int, float]]:
    _, split = load_split(cfg.data)
    out: dict[int, dict[int, float]] = {}
    for u, i, r in zip(split.train.users, split.train.items, split.train.ratings, strict=True):
        per = out.setdefault(int(u), {})
        per[int(i)] = max(per.get(int(i), -math.inf), float(r))
    return out


def attack_round(
    *,
    base: Mapping[str, Any],
    fed: PlainLoop,
    clients: Sequence[_Client],
    pool: Sequence[_Client],
    server_round: int,
    scratch: Path,
    record_sigmas: Sequence[float],
    user_sigmas: Sequence[float],
    secagg_sizes: Sequence[int],
    distributed_sigma: float,
    seed: int,
    progress: Callable[[str], None],
    item_text: np.ndarray | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Every defense's attack results on ``clients`` at the global model of ``server_round``.

    ``item_text``: the catalogue's text embeddings, for the text-head attack on hybrid updates.
    """

    def new_row(defense: str, setting: str) -> _Row:
        return _Row(defense, setting, item_text=item_text)

    shared = fed.global_tensors
    nodp = fed.cfg
    dp_base = resolve_config({}, {**load_scenario(DP_SCENARIO), **base})
    delta_pp = dp_base.privacy.dp_delta
    rows: list[dict[str, Any]] = []

    # No defense: the no-DP scenario's update, for the targets and the secure-aggregation pool.
    none_row = new_row("none", f"scenario {NODP_SCENARIO} ({nodp.train.client_optimizer})")
    none_row.extra.update(epsilon=None, epsilon_text="∞ (no DP)")
    pool_deltas: dict[int, Update] = {}
    with _Timer(none_row):
        for k, c in enumerate(pool):
            pool_deltas[c.pid] = _train_update(
                nodp, c, shared, fed.state_root, scratch, server_round
            )[0]
            if (k + 1) % 50 == 0:
                progress(f"round {server_round}: no-DP updates {k + 1}/{len(pool)}")
        for c in clients:
            none_row.attack(pool_deltas[c.pid], shared, c.truth)
    rows.append(none_row.result(server_round, seed))
    progress(_line(rows[-1]))

    sgd_cfg = dp_base.replace(**{"dp-enabled": False})
    sgd_row = new_row(
        "none", f"scenario {DP_SCENARIO} with DP off ({sgd_cfg.train.client_optimizer})"
    )
    sgd_row.extra.update(epsilon=None, epsilon_text="∞ (no DP)")
    with _Timer(sgd_row):
        for c in clients:
            d = _train_update(sgd_cfg, c, shared, fed.state_root, scratch, server_round)[0]
            sgd_row.attack(d, shared, c.truth)
    rows.append(sgd_row.result(server_round, seed))
    progress(_line(rows[-1]))

    # Record-level DP-SGD: the client's own accountant states epsilon for this round.
    for sigma in record_sigmas:
        cfg = dp_base.replace(**{"dp-enabled": True, "dp-noise-multiplier": sigma})
        row = new_row("record-level DP-SGD", f"dp-noise-multiplier {sigma:g}")
        eps_round, eps_run = [], []
        run_rounds = cfg.federation.num_rounds
        with _Timer(row):
            for c in clients:
                d, eps, history = _train_update(
                    cfg, c, shared, fed.state_root, scratch, server_round
                )
                eps_round.append(float(eps or 0.0))
                eps_run.append(
                    epsilon_of([(s, q, n * run_rounds) for s, q, n in history], delta_pp)
                )
                row.attack(d, shared, c.truth)
        row.extra.update(
            epsilon=max(eps_round),
            epsilon_run=max(eps_run),
            run_rounds=run_rounds,
            delta=delta_pp,
            unit="record",
            epsilon_text=(
                f"{max(eps_round):.2f} per record this round ({max(eps_run):.2f} after "
                f"{run_rounds} rounds), δ={delta_pp:g}"
            ),
        )
        rows.append(row.result(server_round, seed))
        progress(_line(rows[-1]))

    # User-level DP as the project runs it (shared/privacy/user.py), at its user-clip.
    # Epsilon against the server: it picks the sample, so each round a user takes part in is
    # a full Gaussian mechanism (q = 1; shared/privacy/accounting.py), for this round and for
    # a run as long as the DP scenario's.
    privacy = nodp.privacy
    clip = privacy.user_clip
    delta_user = resolve_delta(privacy, fed.num_partitions)
    rounds = dp_base.federation.num_rounds
    norms = np.array([update_norm(d) for d in pool_deltas.values()])
    clip_stats = {
        "clip": clip,
        "median_update_norm": float(np.median(norms)),
        "clipped_share": float(np.mean(norms > clip)),
    }
    central = new_row("user-level DP, central", "the server clips and noises the sum")
    central.extra.update(
        epsilon=None,
        clip=clip,
        epsilon_text="none against the server (it sees every raw update)",
    )
    with _Timer(central):
        for c in clients:
            central.attack(pool_deltas[c.pid], shared, c.truth)
    rows.append(central.result(server_round, seed))
    progress(_line(rows[-1]))
    for sigma in user_sigmas:
        eps_1 = _user_epsilon(privacy, sigma, 1, delta_user)
        eps_r = _user_epsilon(privacy, sigma, rounds, delta_user)
        row = new_row("user-level DP, local", f"σ={sigma:g}, C={clip:g}")
        row.extra.update(
            epsilon=eps_1,
            epsilon_run=eps_r,
            run_rounds=rounds,
            delta=delta_user,
            unit="user",
            sigma=sigma,
            clip=clip,
            epsilon_text=(
                f"{eps_1:.3g} per user this round ({eps_r:.3g} after {rounds} rounds), "
                f"δ={delta_user:.2g}"
            ),
        )
        with _Timer(row):
            for c in clients:
                rng = SeededRandom(seed, server_round, c.pid, int(sigma * 1e6))
                row.attack(local_user_dp(pool_deltas[c.pid], clip, sigma, rng), shared, c.truth)
        rows.append(row.result(server_round, seed))
        progress(_line(rows[-1]))

    # Secure aggregation: the server sees the sum of a cohort of K updates (the target's and
    # K-1 others from the pool). Control: the same cohort with the target swapped for another
    # client, i.e. what the sum says about the target's items without its update.
    pool_ids = [c.pid for c in pool]
    pool_sum = secure_sum(list(pool_deltas.values()))
    sizes = [k for k in secagg_sizes if 2 <= k <= len(pool_ids) - 2]
    for size in sorted(set(secagg_sizes) - set(sizes)):
        logger.warning(
            "secure aggregation of %d needs a pool of more than %d clients", size, size + 1
        )
    for size in sizes:
        plain = new_row("SecAgg+", f"sum of K={size} updates")
        corrected = new_row("SecAgg+", f"sum of K={size} updates minus (K-1) x mean update")
        for row in (plain, corrected):
            row.extra.update(epsilon=None, epsilon_text="no DP (server sees only the sum)", k=size)
        for c in clients:
            group, extra = _cohort(pool_ids, c.pid, size, [seed, server_round, size])
            with _Timer(plain):
                total = secure_sum([pool_deltas[p] for p in group])
                without = {
                    k: total[k] - pool_deltas[c.pid][k] + pool_deltas[extra][k] for k in total
                }
                plain.attack(total, shared, c.truth, control=without)
            with _Timer(corrected):
                # Less what an average client sends, learnt from the pool's clients outside
                # both cohorts (the server has other cohorts' and earlier rounds' aggregates).
                n_rest = len(pool_ids) - size - 1
                mean = {k: (pool_sum[k] - total[k] - pool_deltas[extra][k]) / n_rest for k in total}
                corrected.attack(
                    {k: total[k] - (size - 1) * mean[k] for k in total},
                    shared,
                    c.truth,
                    control={k: without[k] - (size - 1) * mean[k] for k in without},
                )
        for row in (plain, corrected):
            rows.append(row.result(server_round, seed))
            progress(_line(rows[-1]))

    # Secure aggregation with distributed user-level noise: each client clips and adds
    # N(0, (sigma C)^2 / K), so the sum carries N(0, (sigma C)^2), as central DP would. The
    # K-1 clients both cohorts share contribute the same clipped updates and noise to both.
    size = max(sizes, default=0)
    for sigma in [distributed_sigma] if size and distributed_sigma > 0 else []:
        eps_1 = _user_epsilon(privacy, sigma, 1, delta_user)
        row = new_row(
            "SecAgg+ with distributed user-level DP", f"K={size}, σ={sigma:g}, C={clip:g}"
        )
        row.extra.update(
            epsilon=eps_1,
            delta=delta_user,
            unit="user",
            sigma=sigma,
            clip=clip,
            k=size,
            epsilon_text=f"{eps_1:.3g} per user this round, δ={delta_user:.2g}",
        )
        clipped = {p: clip_update(d, clip)[0] for p, d in pool_deltas.items()}
        # Each client's share for K survivors: the least noise the project's SecAgg+ adds
        # (it adds sigma C / sqrt(t) for the fewest survivors t <= K), the attacker's best case.
        std = noise_std("secagg", sigma, clip, survivors=size)
        with _Timer(row):
            for c in clients:
                group, extra = _cohort(pool_ids, c.pid, size, [seed, server_round, size])
                rng = SeededRandom(seed, server_round, c.pid, size, 1)
                shared_part = secure_sum([clipped[p] for p in group[1:]])
                common = gaussian_noise_like(shared_part, std * math.sqrt(size - 1), rng)
                own = gaussian_noise_like(shared_part, std, rng)
                swap = gaussian_noise_like(shared_part, std, rng)
                base_sum = {k: shared_part[k] + common[k] for k in shared_part}
                row.attack(
                    {k: base_sum[k] + clipped[c.pid][k] + own[k] for k in base_sum},
                    shared,
                    c.truth,
                    control={k: base_sum[k] + clipped[extra][k] + swap[k] for k in base_sum},
                )
        rows.append(row.result(server_round, seed))
        progress(_line(rows[-1]))
    return rows, clip_stats


def _cohort(
    pool: Sequence[int], target: int, size: int, seed: Sequence[int]
) -> tuple[list[int], int]:
    """A cohort of ``size`` with ``target`` in it, and the client that replaces ``target``."""
    rng = np.random.default_rng([*seed, target])
    picked = rng.choice([p for p in pool if p != target], size, replace=False).tolist()
    return [target, *picked[: size - 1]], int(picked[-1])


def _line(row: dict[str, Any]) -> str:
    m = row["membership_auc"][row["strongest_membership_attack"]]["mean"]
    r = row["rating_auc"][row["strongest_rating_attack"]]["mean"]
    return (
        f"round {row['round']}: {row['defense']} [{row['setting']}]: membership AUC {m:.3f} "
        f"({row['strongest_membership_attack']}), rating AUC {r:.3f}, {row['wall_s']:.1f}s"
    )


@contextmanager
def _benchmark_env() -> Iterator[None]:
    """One intra-op torch thread and no Opacus empty-batch warnings while updates train.

    Every local model is tiny: on a busy 2-core machine one thread trained an ML-100K
    update in 0.2 s, two threads in 1.6 s. Opacus warns whenever a user's first Poisson
    batch comes out empty, which the project's training handles (docs/privacy.md).
    """
    threads = torch.get_num_threads()
    opacus_log = logging.getLogger("opacus.data_loader")
    level = opacus_log.level
    torch.set_num_threads(1)
    opacus_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        opacus_log.setLevel(level)


def run_attack_benchmark(
    *,
    overrides: Mapping[str, Any] | None = None,
    output_dir: Path,
    runs_dir: Path,
    name: str = "attack",
    targets: int = 100,
    attack_rounds: Sequence[int] = (1, 4),
    record_sigmas: Sequence[float] = RECORD_SIGMAS,
    user_sigmas: Sequence[float] = USER_SIGMAS,
    secagg_sizes: Sequence[int] = SECAGG_SIZES,
    distributed_sigma: float = 1.0,
    seed: int = 42,
) -> dict[str, Any]:
    """Attack ``targets`` sampled clients at each of ``attack_rounds``; write JSON and Markdown.

    The federation between attacked rounds is the no-DP scenario (plus ``overrides``) in a
    plain loop over all clients; the attacked updates are computed from copies of the
    clients' states, so they do not feed the federation.
    """
    t_start = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = runs_dir / f"attack-{stamp}"
    base = {
        **(overrides or {}),
        "output-dir": str(runs_dir),
        "run-name": run_dir.name,
        "resume": False,
    }
    cfg = resolve_config({}, {**load_scenario(NODP_SCENARIO), **base})
    _, split = load_split(cfg.data)
    n_clients = split.n_users
    fed = PlainLoop(
        cfg,
        n_clients,
        init_global(cfg, split.n_items),
        run_dir / "clients",
    )
    ratings = _ratings_by_user(cfg)
    item_text = None
    if cfg.text.text_tower != "off":
        # Public: the catalogue's texts through the public encoder (what the server has).
        item_text = item_text_embeddings(cfg, load_dataset(cfg.data).items.texts)
    rng = np.random.default_rng(seed)
    n_targets = min(targets, n_clients)
    n_pool = min(n_clients, max(n_targets, max(secagg_sizes, default=0) + n_targets))
    pool_ids = sorted(rng.choice(n_clients, n_pool, replace=False).tolist())
    target_ids = set(rng.choice(pool_ids, n_targets, replace=False).tolist())

    def client(pid: int) -> _Client:
        data = load_client_data(cfg, pid, n_clients)
        users = [int(u) for u in data.users]
        if len(users) != 1:
            raise ValueError("the attack needs one user per client (cross-device)")
        return _Client(pid, data, truth_of(data, ratings.get(users[0], {})))

    pool = [client(p) for p in pool_ids]
    clients = [c for c in pool if c.pid in target_ids]
    logger.info(
        "attack: %d target clients of %d, a pool of %d for secure aggregation, rounds %s",
        len(clients),
        n_clients,
        len(pool),
        ", ".join(map(str, attack_rounds)),
    )

    rows: list[dict[str, Any]] = []
    clips: dict[int, dict[str, float]] = {}
    warmup_s = 0.0
    last = max(attack_rounds)
    with _benchmark_env():
        for rnd in range(1, last + 1):
            if rnd in attack_rounds:
                got, clips[rnd] = attack_round(
                    base=base,
                    fed=fed,
                    clients=clients,
                    pool=pool,
                    server_round=rnd,
                    scratch=run_dir / "scratch",
                    record_sigmas=record_sigmas,
                    user_sigmas=user_sigmas,
                    secagg_sizes=secagg_sizes,
                    distributed_sigma=distributed_sigma,
                    seed=seed,
                    progress=logger.info,
                    item_text=item_text,
                )
                rows += got
            if rnd < last:
                parts = sample_partitions(
                    n_clients, cfg.federation.fraction_train, seed=cfg.data.seed, rnd=rnd
                )
                seconds = fed.train_round(parts, rnd)
                warmup_s += seconds
                logger.info(
                    "federation round %d (no DP, %d clients): %.1fs", rnd, len(parts), seconds
                )
    shutil.rmtree(run_dir, ignore_errors=True)

    result = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": cfg.data.dataset,
        "threat_model": (
            "honest-but-curious server; it sees one client's update of the shared item "
            "model (or, under secure aggregation, only the sum of K updates) and the "
            "global model it sent"
        ),
        "attacked_rounds": list(attack_rounds),
        "federation": {
            "scenario": NODP_SCENARIO,
            "dp_scenario": DP_SCENARIO,
            "settings": cfg.to_run_config(),
            "clients": n_clients,
            "seconds": warmup_s,
        },
        "targets": len(clients),
        "pool": len(pool),
        "seed": seed,
        "record_sigmas": list(record_sigmas),
        "user_sigmas": list(user_sigmas),
        "secagg_sizes": list(secagg_sizes),
        "distributed_sigma": distributed_sigma,
        "clip": {str(k): v for k, v in clips.items()},
        "high_rating": HIGH_RATING,
        "machine": machine_stamp(),
        "rows": rows,
        "wall_s": time.perf_counter() - t_start,
    }
    save(result, output_dir, name, kind="attack")
    return result


# ------------------------------------------------------------------- report
