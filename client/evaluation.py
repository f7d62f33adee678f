"""A client's evaluation: each local user's held-out item ranked with its private factor.

Answers the server's evaluate messages (:func:`evaluate_round`) and the simulation's own
measurement of client states (``fedrec evaluate``, the plain loop).
"""

from __future__ import annotations

import numpy as np
import torch

from fedrec.client.dataview import ClientData
from fedrec.client.state import ClientState, ClientStateStore
from fedrec.client.task import build_model
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import ConfigError
from fedrec.shared.evaluation import UserEval, evaluate_user, sample_negatives, summarize
from fedrec.shared.protocol import WEIGHT
from fedrec.shared.training import finetune_users


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
