"""What a client answers to a train message: its update (noised where asked) or a refusal.

Under any DP only the update and ε values leave the client (:func:`train_metrics`); under
``user-dp`` local or secagg the update is clipped and noised here (:func:`noised_update`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedrec.client.state import ClientStateStore
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import PrivacyBudgetExceeded
from fedrec.shared.privacy import UserRound, dp_random, noise_std, privatize, update_norm
from fedrec.shared.protocol import BUDGET_EXHAUSTED, EPSILON, USER_EPSILON, WEIGHT
from fedrec.shared.training import LocalResult

logger = logging.getLogger(__name__)


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
