"""The client's work, in plain Python: one round of local training, start to reply.

``client_app.py`` only parses messages, calls :func:`train_round` (or
:func:`fedrec.client.evaluation.evaluate_round`) and replies, as in Flower's app template;
the plain loop calls the same functions. What the reply holds is
:mod:`fedrec.client.replies`; a cohort of simulated clients is :mod:`fedrec.client.cohort`.
A client owns one user (cross-device) or a block of users (cross-silo); the users' factors
are private and live in :mod:`fedrec.client.state`.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from fedrec.client.dataview import ClientData
from fedrec.client.replies import TrainReply, refusal_reply, trained_reply
from fedrec.client.state import ClientState, ClientStateStore
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import PrivacyBudgetExceeded
from fedrec.shared.models.factory import make_model
from fedrec.shared.models.initial import init_user_factors
from fedrec.shared.models.mf import MatrixFactorization
from fedrec.shared.privacy import UserRound, check_record_budget, check_user_budget
from fedrec.shared.training import LocalResult, train_local

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
