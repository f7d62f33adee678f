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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fedrec.client.dataview import ClientData, client_seed, load_client_data, state_dir
from fedrec.client.evaluation import evaluate_round
from fedrec.client.replies import TrainReply, refusal_reply, trained_reply
from fedrec.client.sealing import simulation_key
from fedrec.client.state import ClientState, ClientStateStore
from fedrec.client.task import (
    finish_local_round,
    local_seed,
    start_local_round,
    train_round,
    user_factors_for,
)
from fedrec.shared import cohort_training
from fedrec.shared.cohort_messages import check_cohorts_allowed
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import PrivacyBudgetExceeded
from fedrec.shared.models.factory import item_text_embeddings
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
    if not partition_ids:
        return []
    dirs = [state_dir(cfg, int(pid), None, run_id) for pid in partition_ids]
    key = simulation_key(dirs[0].parent)  # the run's key, read once for all its clients
    return [
        Member(
            partition_id=int(pid),
            data=load_client_data(cfg, int(pid), num_partitions),
            store=ClientStateStore(folder, key, durable=False),
            seed=client_seed(cfg, int(pid)),
        )
        for pid, folder in zip(partition_ids, dirs, strict=True)
    ]


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
    """Each member's reply to this round's train message, in ``members``' order.

    Settings the batched trainer covers (:func:`fedrec.shared.cohort_training.supports`)
    train all members in one computation; others train one by one through
    :func:`~fedrec.client.task.train_round`. Either way each member's budget checks, state,
    ledger and user-level noise are its own.
    """
    check_cohorts_allowed(cfg)
    if not cohort_training.supports(cfg.train, cfg.privacy, cfg.text):
        return [
            _guarded(
                lambda m=member: train_round(  # type: ignore[misc]
                    cfg,
                    m.data,
                    global_tensors,
                    m.store,
                    server_round=server_round,
                    seed=m.seed,
                    device=device,
                    user_round=user_round,
                    resumed_from=resumed_from,
                    incarnation=incarnation,
                    committed=committed,
                    run_id=run_id,
                )
            )
            for member in members
        ]
    started = time.perf_counter()
    replies: dict[int, TrainReply] = {}
    starts: dict[int, ClientState] = {}
    for j, member in enumerate(members):
        seeds = (member.seed, server_round)
        try:
            start = start_local_round(
                cfg,
                member.data,
                member.store,
                server_round=server_round,
                seed=member.seed,
                resumed_from=resumed_from,
                incarnation=incarnation,
                committed=committed,
                user_round=user_round,
                run_id=run_id,
            )
            if len(member.data.train_items) == 0:
                raise ValueError("a client with no training interactions cannot train")
            starts[j] = start
        except PrivacyBudgetExceeded as refusal:
            replies[j] = refusal_reply(
                cfg, global_tensors, member.store, refusal, survivors=None, seeds=seeds
            )
        except Exception as err:  # noqa: BLE001 - one member's failure is its own reply
            replies[j] = _failure(err)
    order = sorted(starts)
    runs = [
        cohort_training.MemberRun(
            user_factors=user_factors_for(cfg, members[j].data, starts[j], seed=members[j].seed),
            users=members[j].data.train_users,
            items=members[j].data.train_items,
            accountant_history=starts[j].accountant_history,
            seed=local_seed(members[j].seed, server_round),
        )
        for j in order
    ]
    item_text = None
    if cfg.text.text_tower == "heads" and order:
        item_text = item_text_embeddings(cfg, members[order[0]].data.item_texts)
    trained = cohort_training.train_cohort_local(
        global_tensors,
        runs,
        train=cfg.train,
        privacy=cfg.privacy,
        text=cfg.text,
        item_text=item_text,
        learning_rate=cfg.train.lr_at(server_round),
        device=device,
    )
    for j, out in zip(order, trained, strict=True):
        member = members[j]
        finish_local_round(
            member.store,
            starts[j],
            user_factors=out.user_factors,
            result=out.result,
            server_round=server_round,
            incarnation=incarnation,
            user_round=user_round,
        )
        replies[j] = trained_reply(
            cfg,
            global_tensors,
            out.global_tensors,
            out.result,
            member.store,
            user_round=user_round,
            survivors=None,
            seeds=(member.seed, server_round),
            started=started,
        )
    return [replies[j] for j in range(len(members))]


def _guarded(train: Callable[[], TrainReply]) -> TrainReply:
    """One member's reply, or its failure as an error reply (the others still answer)."""
    try:
        return train()
    except Exception as err:  # noqa: BLE001 - one member's failure is its own reply
        return _failure(err)


def _failure(err: Exception) -> TrainReply:
    """A member's failure as its reply: no update, the reason."""
    return TrainReply({}, {}, error=f"{type(err).__name__}: {err}")


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
