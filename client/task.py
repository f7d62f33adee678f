"""The client's work, in plain Python: its data view, local training and local evaluation.

``client_app.py`` only parses messages, calls :func:`train_round` or
:func:`evaluate_round` and replies, as in Flower's app template; the plain loop calls the
same two functions. A client owns one user (cross-device) or a block of users (cross-silo); the
users' factors are private and live in :mod:`fedrec.client.state`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fedrec.client.dataview import ClientData
from fedrec.client.state import ClientState, ClientStateStore
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import ConfigError, PrivacyBudgetExceeded
from fedrec.shared.evaluation import UserEval, evaluate_user, sample_negatives, summarize
from fedrec.shared.models.factory import make_model
from fedrec.shared.models.mf import MatrixFactorization, init_user_factors
from fedrec.shared.privacy import (
    UserRound,
    check_record_budget,
    check_user_budget,
    dp_random,
    noise_std,
    privatize,
    update_norm,
)
from fedrec.shared.protocol import BUDGET_EXHAUSTED, EPSILON, USER_EPSILON, WEIGHT
from fedrec.shared.training import LocalResult, finetune_users, train_local

logger = logging.getLogger(__name__)


def build_model(
    cfg: FedRecConfig,
    data: ClientData,
    global_tensors: dict[str, np.ndarray],
    state: ClientState | None,
    *,
    seed: int,
) -> MatrixFactorization:
    """The local model: global tensors + this client's private user factors.

    The item texts are public catalogue data, the same on every client.
    """
    if cfg.text.text_tower == "off":
        model = MatrixFactorization(len(data.users), data.n_items, cfg.train.embedding_dim)
    elif len(data.item_texts) != data.n_items:
        raise ValueError(
            f"text-tower={cfg.text.text_tower} needs the catalogue's {data.n_items} item "
            f"texts, the client has {len(data.item_texts)}"
        )
    else:
        model = make_model(cfg, len(data.users), data.item_texts)
    model.set_global(global_tensors)
    model.set_users(user_factors_for(cfg, data, state, seed=seed))
    return model


def user_factors_for(
    cfg: FedRecConfig, data: ClientData, state: ClientState | None, *, seed: int
) -> np.ndarray:
    """The private factors of ``data``'s users: the saved ones, fresh ones for new users.

    A node's store gives users an index in the order they first appear and never reuses
    one, so users added since the state was saved come after its rows.
    """
    n, dim = len(data.users), cfg.train.embedding_dim
    fresh = init_user_factors(n, dim, seed=seed)
    if state is None:
        return fresh
    saved = np.asarray(state.user_factors, dtype=np.float32)
    if saved.shape[0] > n or (saved.shape[0] and saved.shape[1] != dim):
        raise ValueError(
            f"the saved state holds factors of shape {saved.shape}, but this client has {n} "
            f"users at embedding-dim {dim}; the state belongs to other data or settings"
        )
    if saved.shape[0] == n:
        return saved
    return np.concatenate([saved.reshape(-1, dim), fresh[saved.shape[0] :]]).astype(np.float32)


def local_train(
    cfg: FedRecConfig,
    data: ClientData,
    global_tensors: dict[str, np.ndarray],
    store: ClientStateStore,
    *,
    server_round: int,
    seed: int,
    device: torch.device,
    resumed_from: int | None = None,
    incarnation: str | None = None,
    committed: dict[str, tuple[int, int]] | None = None,
    user_round: UserRound | None = None,
    run_id: str | None = None,
) -> tuple[dict[str, np.ndarray], LocalResult]:
    """One round of local training; saves the private state and returns the new global tensors.

    A round the server asks for again (it restarted before checkpointing it) starts from the
    state from before that round, not on top of it, and so does any round after a latest
    round that the server says was lost (``resumed_from`` and ``incarnation``, the round the
    asking server process started at and its token): see
    :meth:`ClientStateStore.start_round`. The state this round started from is saved next to
    the new one, with the incarnation it is trained for, for that purpose. ``committed``
    (token -> first and last round that server process checkpointed) catches a lost round
    even after later restarts.

    ``user_round`` (user-level local or secagg noise): the round is refused if it would
    take the user-level epsilon over its budget, and is written to the ledger with the
    new state, before the caller noises and sends the update.
    """
    start = start_local_round(
        cfg,
        data,
        store,
        server_round=server_round,
        seed=seed,
        resumed_from=resumed_from,
        incarnation=incarnation,
        committed=committed,
        user_round=user_round,
        run_id=run_id,
    )
    model = build_model(cfg, data, global_tensors, start, seed=seed)
    result = train_local(
        model,
        data.train_users,
        data.train_items,
        train=cfg.train,
        privacy=cfg.privacy,
        # A discarded round's DP steps stay in here: start_round never rolls accounting back.
        accountant_history=start.accountant_history,
        seed=local_seed(seed, server_round),
        device=device,
        learning_rate=cfg.train.lr_at(server_round),
    )
    finish_local_round(
        store,
        start,
        user_factors=model.get_users(),
        result=result,
        server_round=server_round,
        incarnation=incarnation,
        user_round=user_round,
    )
    return model.get_global(), result


def local_seed(seed: int, server_round: int) -> int:
    """The seed of a round's local training (DP randomness only under reproducible-noise)."""
    return seed * 1_000_003 + server_round


def start_local_round(
    cfg: FedRecConfig,
    data: ClientData,
    store: ClientStateStore,
    *,
    server_round: int,
    seed: int,
    resumed_from: int | None = None,
    incarnation: str | None = None,
    committed: dict[str, tuple[int, int]] | None = None,
    user_round: UserRound | None = None,
    run_id: str | None = None,
) -> ClientState:
    """The state a round trains from, after the budget checks (raises when refused).

    See :func:`local_train` for the resume arguments and ``user_round``.
    """
    start = store.start_round(
        server_round,
        resumed_from=resumed_from,
        incarnation=incarnation,
        committed=committed,
        run_id=run_id,
    )
    if start is None:
        start = ClientState(
            user_factors=init_user_factors(len(data.users), cfg.train.embedding_dim, seed=seed),
            run_id=run_id,
        )
    check_budget(cfg, start, n_records=len(data.train_items))
    if user_round is not None:
        check_user_budget(start.user_ledger, user_round)
    return start


def finish_local_round(
    store: ClientStateStore,
    start: ClientState,
    *,
    user_factors: np.ndarray,
    result: LocalResult,
    server_round: int,
    incarnation: str | None,
    user_round: UserRound | None,
) -> None:
    """Save the trained private state (and the round's user-level ledger entry)."""
    trained = ClientState(
        user_factors=user_factors,
        accountant_history=result.accountant_history,
        rounds_trained=start.rounds_trained + [server_round],
        epsilon=result.epsilon or 0.0,
        discarded_rounds=start.discarded_rounds,
        incarnation=incarnation,
        user_ledger=start.user_ledger,
        user_epsilon=start.user_epsilon,
        user_delta=start.user_delta,
        run_id=start.run_id,
    )
    store.save(trained.spend(user_round) if user_round else trained, previous=start)


def check_budget(cfg: FedRecConfig, state: ClientState, *, n_records: int) -> None:
    """Refuse (raise) before training a round that would take epsilon over the budget."""
    if n_records:  # a client with nothing to train on releases nothing
        check_record_budget(state.accountant_history, cfg.train, cfg.privacy)


def local_user_evals(
    cfg: FedRecConfig,
    data: ClientData,
    global_tensors: dict[str, np.ndarray],
    state: ClientState | None,
    *,
    k: int,
    personalize_epochs: int,
    seed: int,
) -> list[UserEval]:
    """Rank each local user's held-out item with the private factor over the full catalogue.

    The private factor is first fit a few epochs on the user's own training items with the
    item side frozen (on-device personalisation). That fit is a throw-away copy: it never
    feeds the DP training of global parameters.
    """
    model = build_model(cfg, data, global_tensors, state, seed=seed)
    finetune_users(
        model,
        data.train_users,
        data.train_items,
        train=cfg.train,
        epochs=personalize_epochs,
        seed=seed,
    )
    with torch.no_grad():
        scores = model.score_all(torch.arange(len(data.users))).numpy()
    evals = []
    for j, user in enumerate(data.users):
        target = int(data.test_items[j])
        if target < 0:
            continue
        negatives = sample_negatives(
            data.n_items, data.seen[j], n=99, seed=cfg.data.seed, user=int(user)
        )
        evals.append(
            evaluate_user(
                scores[j], target=target, exclude=data.exclude[j], negatives=negatives, k=k
            )
        )
    return evals


def local_evaluate(
    cfg: FedRecConfig,
    data: ClientData,
    global_tensors: dict[str, np.ndarray],
    store: ClientStateStore,
    *,
    k: int,
    personalize_epochs: int,
    seed: int,
) -> dict[str, float]:
    """This client's metrics, averaged over its users (see :func:`local_user_evals`).

    The averages sent back are not covered by the DP guarantee (see docs/privacy.md).
    """
    evals = local_user_evals(
        cfg,
        data,
        global_tensors,
        store.load(),
        k=k,
        personalize_epochs=personalize_epochs,
        seed=seed,
    )
    if not evals:
        return {"n_users": 0.0}
    return summarize(evals, k=k, n_items=data.n_items)


def noised_update(
    cfg: FedRecConfig,
    global_tensors: dict[str, np.ndarray],
    updated: dict[str, np.ndarray],
    *,
    survivors: int | None,
    seeds: Sequence[int] = (),
) -> dict[str, np.ndarray]:
    """What the client sends under ``user-dp`` local/secagg: its clipped, noised update.

    Every coordinate of every global tensor gets noise, so the reply does not reveal which
    items the user touched. ``local``: the global model plus the update with all the noise;
    ``secagg``: the update itself with this client's share for ``survivors`` (the secure sum
    adds the shares up). ``seeds`` seed the noise only under ``reproducible-noise``.
    """
    privacy = cfg.privacy
    std = noise_std(
        privacy.user_dp,
        privacy.user_noise_multiplier,
        privacy.user_clip,
        survivors=survivors,
        colluders=privacy.secagg_max_colluders,
    )
    delta = {k: updated[k] - global_tensors[k] for k in updated}
    rng = dp_random(
        reproducible=privacy.reproducible_noise, seeds=(*seeds, 1), what="user-level noise"
    )
    noised, _ = privatize(delta, privacy.user_clip, std, rng)
    if privacy.user_dp == "secagg":
        return noised
    return {k: (global_tensors[k] + noised[k]).astype(np.float32) for k in noised}


def train_metrics(
    cfg: FedRecConfig, result: LocalResult, seconds: float, *, user_epsilon: float | None
) -> dict[str, float]:
    """The scalars a client sends with its update.

    Under any DP only ε values leave the client: they follow from public settings and the
    rounds the client took part in. The loss, the step count and the time taken are
    computed from its records without noise, so they are sent only without DP.
    """
    metrics = {
        WEIGHT: 1.0,  # unweighted mean: example counts would leak dataset sizes
        EPSILON: float(result.epsilon if result.epsilon is not None else -1.0),
    }
    if user_epsilon is not None:
        metrics[USER_EPSILON] = float(user_epsilon)
    if not cfg.any_dp:
        metrics.update(
            {"train-loss": result.loss, "steps": float(result.steps), "seconds": seconds}
        )
    return metrics


@dataclass(frozen=True)
class TrainReply:
    """What a client answers to a train message: its tensors and its metrics.

    ``update_norm`` is the L2 norm of its update before any user-level clipping or noise: a
    diagnostic the plain loop reads; it never leaves the client.
    """

    arrays: dict[str, np.ndarray]
    metrics: dict[str, float]
    update_norm: float | None = None
    # A cohort member that could not train (its worker's other members still answer).
    error: str | None = None

    @property
    def refused(self) -> bool:
        """Whether the client refused the round (its privacy budget is spent)."""
        return bool(self.metrics.get(BUDGET_EXHAUSTED))


def train_round(
    cfg: FedRecConfig,
    data: ClientData,
    global_tensors: dict[str, np.ndarray],
    store: ClientStateStore,
    *,
    server_round: int,
    seed: int,
    device: torch.device,
    user_round: UserRound | None = None,
    survivors: int | None = None,
    resumed_from: int | None = None,
    incarnation: str | None = None,
    committed: dict[str, tuple[int, int]] | None = None,
    run_id: str | None = None,
    started: float | None = None,
) -> TrainReply:
    """One training round as the server sees it: trained, noised where asked, or refused.

    Trains with :func:`local_train` (its ``user_round`` and resume arguments), then adds
    the client's user-level noise (``user-dp`` local or secagg; ``survivors`` is SecAgg+'s
    threshold) with :func:`noised_update`. A round past a privacy budget is refused: the
    reply carries no update and says why in its metrics, and under secagg it still holds
    this client's noise share (a zero update noised), so that the others' noise is not
    short by it. ``started`` (``time.perf_counter()``) times the round from the message's
    arrival.
    """
    t0 = time.perf_counter() if started is None else started
    seeds = (seed, server_round)  # seeds the user-level noise only if reproducible
    try:
        updated, result = local_train(
            cfg,
            data,
            global_tensors,
            store,
            server_round=server_round,
            seed=seed,
            device=device,
            resumed_from=resumed_from,
            incarnation=incarnation,
            committed=committed,
            user_round=user_round,
            run_id=run_id,
        )
    except PrivacyBudgetExceeded as refusal:
        return refusal_reply(cfg, global_tensors, store, refusal, survivors=survivors, seeds=seeds)
    return trained_reply(
        cfg,
        global_tensors,
        updated,
        result,
        store,
        user_round=user_round,
        survivors=survivors,
        seeds=seeds,
        started=t0,
    )


def refusal_reply(
    cfg: FedRecConfig,
    global_tensors: dict[str, np.ndarray],
    store: ClientStateStore,
    refusal: PrivacyBudgetExceeded,
    *,
    survivors: int | None,
    seeds: Sequence[int],
) -> TrainReply:
    """A refusal is an answer, not a failure: no update, and the reason."""
    logger.info("%s: %s", store.directory.name, refusal)
    state = store.load()
    refused = {
        WEIGHT: 1.0,
        BUDGET_EXHAUSTED: 1.0,
        EPSILON: float(state.epsilon if state else 0.0),
        USER_EPSILON: state.reported_user_epsilon if state else 0.0,
    }
    arrays: dict[str, np.ndarray] = {}
    if cfg.privacy.user_dp == "secagg":
        arrays = noised_update(
            cfg, global_tensors, global_tensors, survivors=survivors, seeds=seeds
        )
    return TrainReply(arrays, refused)


def trained_reply(
    cfg: FedRecConfig,
    global_tensors: dict[str, np.ndarray],
    updated: dict[str, np.ndarray],
    result: LocalResult,
    store: ClientStateStore,
    *,
    user_round: UserRound | None,
    survivors: int | None,
    seeds: Sequence[int],
    started: float,
) -> TrainReply:
    """The reply after training: the update, noised under user-level local/secagg."""
    norm = update_norm({k: updated[k] - global_tensors[k] for k in global_tensors})
    user_epsilon = None
    if user_round is not None:
        updated = noised_update(cfg, global_tensors, updated, survivors=survivors, seeds=seeds)
        state = store.load()
        user_epsilon = state.reported_user_epsilon if state else 0.0
    seconds = time.perf_counter() - started
    metrics = train_metrics(cfg, result, seconds, user_epsilon=user_epsilon)
    return TrainReply(updated, metrics, norm)


def evaluate_round(
    cfg: FedRecConfig,
    data: ClientData,
    global_tensors: dict[str, np.ndarray],
    store: ClientStateStore,
    *,
    k: int,
    personalize_epochs: int,
    seed: int,
) -> dict[str, float]:
    """What a client answers to an evaluate message, or a refusal (raised) under DP.

    Metrics from the held-out records carry no noise: under DP they leave the client only
    if the run explicitly asked for them (``federated-evaluation = on``). Coverage is a
    property of all users' lists together; a per-client value averages to nonsense, so the
    server does not get it.
    """
    if not cfg.federated_evaluation:
        raise ConfigError(
            f"refusing federated evaluation: federated-evaluation="
            f"{cfg.federation.federated_evaluation} and DP is "
            f"{'on' if cfg.any_dp else 'off'} (set federated-evaluation=on to allow it; "
            "its metrics are not covered by any DP guarantee)"
        )
    metrics = local_evaluate(
        cfg,
        data,
        global_tensors,
        store,
        k=k,
        personalize_epochs=personalize_epochs,
        seed=seed,
    )
    metrics = {key: v for key, v in metrics.items() if not key.startswith("coverage")}
    metrics[WEIGHT] = metrics.get("n_users", 0.0)
    return metrics
