"""Cohorts: several simulated users trained in one call, each with its own guarantee.

A simulation with one Flower message per user pays the framework's per-message cost, and
building a model and a privacy engine, once per user per round. A *cohort* is the users one
simulation worker trains in one call: every member is still its own client -- its own
private state and ledger, its own record-level DP-SGD (clip, noise, accountant), its own
budget refusal and user-level noise, its own reply -- only the work is batched
(:func:`fedrec.shared.training.train_cohort_local` trains the members together where that
is exact, and one by one where it is not).

A member's reply is what :func:`fedrec.client.task.train_round` would send for it: the
server combines members exactly as it combines one-user clients.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fedrec.client.dataview import ClientData, client_seed, load_client_data, state_dir
from fedrec.client.state import ClientStateStore
from fedrec.client.task import TrainReply, evaluate_round, train_round
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import ConfigError
from fedrec.shared.privacy import UserRound

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """One simulated user (a partition) of a cohort: its data, state store and seed."""

    partition_id: int
    data: ClientData
    store: ClientStateStore
    seed: int


def simulated_members(
    cfg: FedRecConfig, partition_ids: Sequence[int], num_partitions: int, run_id: str | None
) -> list[Member]:
    """The members a simulation worker trains: partitions of the run's data set.

    Each keeps its state where a one-user simulated client would (:func:`state_dir`), so a
    run can switch between cohorts and one user per node and find the same states.
    """
    return [
        Member(
            partition_id=int(pid),
            data=load_client_data(cfg, int(pid), num_partitions),
            store=ClientStateStore(state_dir(cfg, int(pid), None, run_id)),
            seed=client_seed(cfg, int(pid)),
        )
        for pid in partition_ids
    ]


def check_cohorts_allowed(cfg: FedRecConfig) -> None:
    """Refuse settings under which members cannot share a worker call.

    Under ``user-dp = secagg`` every user is a party of SecAgg+ with its own masks and
    noise share: a cohort would be one party, so its members' updates would be summed
    before the secure sum and its dropout would drop them all.
    """
    if cfg.privacy.user_dp == "secagg":
        raise ConfigError(
            "cohorts (several simulated users per worker call) cannot run user-dp=secagg: "
            "each user must be its own SecAgg+ party; simulate one user per node instead"
        )


def train_cohort(
    cfg: FedRecConfig,
    members: Sequence[Member],
    global_tensors: dict[str, np.ndarray],
    *,
    server_round: int,
    device: torch.device,
    user_round: UserRound | None = None,
    resumed_from: int | None = None,
    incarnation: str | None = None,
    committed: dict[str, tuple[int, int]] | None = None,
    run_id: str | None = None,
) -> list[TrainReply]:
    """Each member's reply to this round's train message, in ``members``' order."""
    check_cohorts_allowed(cfg)
    replies = []
    for member in members:
        started = time.perf_counter()
        replies.append(
            train_round(
                cfg,
                member.data,
                global_tensors,
                member.store,
                server_round=server_round,
                seed=member.seed,
                device=device,
                user_round=user_round,
                resumed_from=resumed_from,
                incarnation=incarnation,
                committed=committed,
                run_id=run_id,
                started=started,
            )
        )
    return replies


def evaluate_cohort(
    cfg: FedRecConfig,
    members: Sequence[Member],
    global_tensors: dict[str, np.ndarray],
    *,
    k: int,
    personalize_epochs: int,
) -> list[dict[str, float]]:
    """Each member's answer to an evaluate message (raises where a client would refuse)."""
    return [
        evaluate_round(
            cfg,
            member.data,
            global_tensors,
            member.store,
            k=k,
            personalize_epochs=personalize_epochs,
            seed=member.seed,
        )
        for member in members
    ]
