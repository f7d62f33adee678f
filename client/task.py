"""The client's work, in plain Python: its data view, local training and local evaluation.

``client_app.py`` only parses messages and calls these functions, as in Flower's app
template. A client owns one user (cross-device) or a block of users (cross-silo); the
users' factors are private and live in :mod:`fedrec.client.state`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedrec.client.state import ClientState, ClientStateStore
from fedrec.shared.config import FedRecConfig
from fedrec.shared.data import load_split, partition_users
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
)
from fedrec.shared.training import LocalResult, finetune_users, train_local

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientData:
    """One client's slice of the data: its users and their interactions only."""

    users: np.ndarray  # global user indices owned by this client
    train_users: np.ndarray  # local user index (0..len(users)-1) per training row
    train_items: np.ndarray  # item index per training row
    exclude: list[np.ndarray]  # per local user: items never to rank (train + valid)
    seen: list[np.ndarray]  # per local user: every item they touched (for negatives)
    test_items: np.ndarray  # per local user, -1 when none
    n_items: int
    item_texts: Sequence[str] = ()  # the public catalogue's texts (for the text towers)


def load_client_data(cfg: FedRecConfig, partition_id: int, num_partitions: int) -> ClientData:
    """This partition's users and data (the split is loaded once per process)."""
    dataset, split = load_split(cfg.data)
    users = partition_users(split.n_users, num_partitions=num_partitions, seed=cfg.data.seed)[
        partition_id
    ]
    mask = np.isin(split.train.users, users)
    local_of = {int(u): k for k, u in enumerate(users)}
    train_users = np.array([local_of[int(u)] for u in split.train.users[mask]], dtype=np.int64)
    train_items = split.train.items[mask].astype(np.int64)
    exclude, seen = [], []
    for k, u in enumerate(users):
        own = np.unique(train_items[train_users == k])
        valid, test = int(split.valid_items[u]), int(split.test_items[u])
        extra = [i for i in (valid,) if i >= 0]
        exclude.append(np.union1d(own, np.array(extra, dtype=np.int64)))
        seen.append(
            np.union1d(exclude[-1], np.array([t for t in (test,) if t >= 0], dtype=np.int64))
        )
    return ClientData(
        users=users,
        train_users=train_users,
        train_items=train_items,
        exclude=exclude,
        seen=seen,
        test_items=split.test_items[users].astype(np.int64),
        n_items=split.n_items,
        item_texts=dataset.items.texts,
    )


def client_seed(cfg: FedRecConfig, partition_id: int) -> int:
    """A per-client seed derived from the run seed (distinct for every partition)."""
    return cfg.data.seed * 100_003 + partition_id


def state_dir(
    cfg: FedRecConfig, partition_id: int, node_state_dir: str | None, run_id: str | None = None
) -> Path:
    """Where this client keeps its private state: per run, never shared between runs.

    On a node (``state-dir`` in its node config) one folder per run identity, so a second
    run on the same node starts its own ledger instead of continuing the first run's.
    """
    if node_state_dir:
        return Path(node_state_dir) / f"run-{run_id}" if run_id else Path(node_state_dir)
    return (
        Path(cfg.output.output_dir) / cfg.output.run_name / "clients" / f"partition-{partition_id}"
    )


def build_model(
    cfg: FedRecConfig,
    data: ClientData,
    shared: dict[str, np.ndarray],
    state: ClientState | None,
    *,
    seed: int,
) -> MatrixFactorization:
    """The local model: global shared tensors + this client's private user factors.

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
    model.set_shared(shared)
    if state is not None:
        model.set_users(state.user_factors)
    else:
        model.set_users(init_user_factors(len(data.users), cfg.train.embedding_dim, seed=seed))
    return model


def local_train(
    cfg: FedRecConfig,
    data: ClientData,
    shared: dict[str, np.ndarray],
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
    """One round of local training; saves the private state and returns the shared update.

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
    model = build_model(cfg, data, shared, start, seed=seed)
    result = train_local(
        model,
        data.train_users,
        data.train_items,
        train=cfg.train,
        privacy=cfg.privacy,
        # A discarded round's DP steps stay in here: start_round never rolls accounting back.
        accountant_history=start.accountant_history,
        seed=seed * 1_000_003 + server_round,
        device=device,
        learning_rate=cfg.train.lr_at(server_round),
    )
    trained = ClientState(
        user_factors=model.get_users(),
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
    return model.get_shared(), result


def check_budget(cfg: FedRecConfig, state: ClientState, *, n_records: int) -> None:
    """Refuse (raise) before training a round that would take epsilon over the budget."""
    if n_records:  # a client with nothing to train on releases nothing
        check_record_budget(state.accountant_history, cfg.train, cfg.privacy)


def local_user_evals(
    cfg: FedRecConfig,
    data: ClientData,
    shared: dict[str, np.ndarray],
    state: ClientState | None,
    *,
    k: int,
    personalize_epochs: int,
    seed: int,
) -> list[UserEval]:
    """Rank each local user's held-out item with the private factor over the full catalogue.

    The private factor is first fit a few epochs on the user's own training items with the
    item side frozen (on-device personalisation). That fit is a throw-away copy: it never
    feeds the DP training of shared parameters.
    """
    model = build_model(cfg, data, shared, state, seed=seed)
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
    shared: dict[str, np.ndarray],
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
        cfg, data, shared, store.load(), k=k, personalize_epochs=personalize_epochs, seed=seed
    )
    if not evals:
        return {"n_users": 0.0}
    return summarize(evals, k=k, n_items=data.n_items)


def noised_update(
    cfg: FedRecConfig,
    shared: dict[str, np.ndarray],
    updated: dict[str, np.ndarray],
    *,
    survivors: int | None,
    seeds: Sequence[int] = (),
) -> dict[str, np.ndarray]:
    """What the client sends under ``user-dp`` local/secagg: its clipped, noised update.

    Every coordinate of every shared tensor gets noise, so the reply does not reveal which
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
    delta = {k: updated[k] - shared[k] for k in updated}
    rng = dp_random(
        reproducible=privacy.reproducible_noise, seeds=(*seeds, 1), what="user-level noise"
    )
    noised, _ = privatize(delta, privacy.user_clip, std, rng)
    if privacy.user_dp == "secagg":
        return noised
    return {k: (shared[k] + noised[k]).astype(np.float32) for k in noised}


def train_metrics(
    cfg: FedRecConfig, result: LocalResult, seconds: float, *, user_epsilon: float | None
) -> dict[str, float]:
    """The scalars a client sends with its update.

    Under any DP only ε values leave the client: they follow from public settings and the
    rounds the client took part in. The loss, the step count and the time taken are
    computed from its records without noise, so they are sent only without DP.
    """
    metrics = {
        "weight": 1.0,  # unweighted mean: example counts would leak dataset sizes
        "epsilon": float(result.epsilon if result.epsilon is not None else -1.0),
    }
    if user_epsilon is not None:
        metrics["user-epsilon"] = float(user_epsilon)
    if not cfg.any_dp:
        metrics.update(
            {"train-loss": result.loss, "steps": float(result.steps), "seconds": seconds}
        )
    return metrics
