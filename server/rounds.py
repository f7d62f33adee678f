"""One federated round's decisions, in plain Python: what both drivers of a round call.

The Flower strategy (:class:`fedrec.server.strategy.FedRecStrategy`, driven by
``server_app.py``) and the plain loop (:class:`fedrec.simulation.plain_loop.PlainLoop`, one
process, no messaging) hand the round's replies to :class:`RoundRules` and get back the new
global model and the round's metrics. Everything the round decides is here:

1. **Screen.** A failed client is counted (``clients-failed``), a client that refused
   because its privacy budget is spent is counted (``clients-out-of-budget``), a reply with
   missing, mis-shaped or non-finite tensors is rejected (``clients-rejected``); none of
   them is averaged in. With ``accept-failures = false`` one failure discards the round.
2. **Combine and add user-level noise**, by where the noise is placed (``user-dp``):

   - ``off`` and ``local`` (each client already noised its own update): updates far above
     the round's median norm are scaled down to that bound (never dropped: an honest
     heavy user's update is large), then combined (mean, trimmed mean, median;
     :mod:`fedrec.server.aggregation`);
   - ``central``: every update is clipped, the sum noised once
     (:class:`fedrec.server.user_dp.CentralNoise`) and divided by the clients *sampled*;
     no norm screening (the clip bounds every update, and screening by the round's median
     would let one user's update decide about another's);
   - ``secagg``: the server only ever gets the sum (:meth:`RoundRules.aggregate_secure`),
     divided by the clients sampled.

   Dividing by the number sampled, not by the number that arrived, keeps the released value
   independent of who took part beyond the noised sum (McMahan et al. 2018).
3. **Apply** the combined update with the server optimizer, whose state goes into every
   checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedrec.server.aggregation import LazyDeltas, ServerOptimizer, apply_updates, mean_of_sum
from fedrec.server.user_dp import CentralNoise, UserLevelAccountant
from fedrec.shared.config import PrivacyConfig
from fedrec.shared.device import device_label
from fedrec.shared.errors import NodeConfigError
from fedrec.shared.privacy import report_for, update_norm
from fedrec.shared.protocol import BUDGET_EXHAUSTED, DEVICE

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Reply:
    """One sampled client's answer to a train message, as the round sees it."""

    node: int | str  # who answered (logs only)
    arrays: Mapping[str, np.ndarray] | None  # its model (None: the client failed)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None  # why it failed

    @property
    def refused(self) -> bool:
        """Whether the client refused to train (its privacy budget is spent)."""
        return self.error is None and bool(self.metrics.get(BUDGET_EXHAUSTED))

    @property
    def misconfigured(self) -> bool:
        """Whether the node failed because its own node config is invalid (see errors.py)."""
        return self.error is not None and NodeConfigError.__name__ in self.error


@dataclass
class SecureSum:
    """What one SecAgg+ round gave the server: the sum only, and who took part."""

    sampled: int
    total: dict[str, np.ndarray] | None = None  # None: the protocol halted
    survivors: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)  # per survivor, plaintext
    # Why each failed node failed, from its error reply (a node config it cannot train
    # with, an exception); nodes that went silent have the SuperLink's reason.
    errors: dict[int, str] = field(default_factory=dict)
    failures: int = 0
    stages: list[dict[str, Any]] = field(default_factory=list)  # per stage: its time, bytes


@dataclass
class RoundResult:
    """A round's outcome: the new global model (``None``: keep the old one), its metrics."""

    model: Arrays | None
    metrics: dict[str, float]
    norms: list[float] = field(default_factory=list)  # the screened updates' norms


class RoundRules:
    """Screens, combines, noises and applies one round's updates (see the module docstring)."""

    def __init__(
        self,
        optimizer: ServerOptimizer,
        *,
        aggregation: str = "mean",
        trim_fraction: float = 0.1,
        update_norm_factor: float = 0.0,
        accept_failures: bool = True,
        central_noise: CentralNoise | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.aggregation = aggregation
        self.trim_fraction = trim_fraction
        self.update_norm_factor = update_norm_factor
        self.accept_failures = accept_failures
        self.central_noise = central_noise
        # Nodes whose node config is invalid, with why: asked no more in this run.
        self.misconfigured: dict[int | str, str] = {}
        self.devices: dict[int | str, str] = {}  # the device each node last reported

    def screen_failures(self, server_round: int, replies: Sequence[Reply]) -> None:
        """Log each failed reply; a misconfigured node once, and remember it."""
        for r in replies:
            if r.error is None:
                continue
            if not r.misconfigured:
                logger.warning("round %d: node %s failed: %s", server_round, r.node, r.error)
            elif r.node not in self.misconfigured:
                self.misconfigured[r.node] = r.error
                logger.error(
                    "round %d: node %s cannot train with its node config and is left out of "
                    "the rest of this run: %s",
                    server_round,
                    r.node,
                    r.error,
                )

    def note_devices(self, replies: Sequence[Reply]) -> None:
        """Log the device of each node the first time it reports it, and when it changes.

        One line per device for all the nodes that are new on it this round: a simulation
        of hundreds of users would otherwise open with as many lines.
        """
        moved: dict[str, list[int | str]] = {}
        for r in replies:
            code = r.metrics.get(DEVICE) if r.error is None else None
            if code is None:
                continue
            label = device_label(float(code))
            if self.devices.get(r.node) != label:
                self.devices[r.node] = label
                moved.setdefault(label, []).append(r.node)
        for label, nodes in moved.items():
            if len(nodes) == 1:
                logger.info("node %s trains on %s", nodes[0], label)
            else:
                ordered = sorted(nodes, key=lambda n: (isinstance(n, str), n))
                shown = ", ".join(map(str, ordered[:5])) + (", ..." if len(nodes) > 5 else "")
                logger.info("%d nodes train on %s (%s)", len(nodes), label, shown)

    def aggregate(
        self, server_round: int, current: Arrays, replies: Sequence[Reply], *, sampled: int
    ) -> RoundResult:
        """The round's new model from ``replies`` to the ``sampled`` clients' messages."""
        failed = [r for r in replies if r.error is not None]
        self.screen_failures(server_round, replies)
        self.note_devices(replies)
        answered = [r for r in replies if r.error is None]
        out_of_budget = sum(1 for r in answered if r.refused)
        valid = [r for r in answered if not r.refused and _valid(r, current)]
        deltas = LazyDeltas(len(valid), lambda i: _delta(valid[i], current))
        counts = _Counts(
            sampled=max(sampled, len(replies)),
            timed_out=max(sampled - len(replies), 0),
            failed=len(failed),
            out_of_budget=out_of_budget,
            malformed=len(answered) - len(valid) - out_of_budget,
        )
        if failed and not self.accept_failures:
            logger.warning(
                "round %d: %d client(s) failed and accept-failures is false: round discarded",
                server_round,
                len(failed),
            )
            # Raw norms are the server's to see only when it adds no noise itself.
            norms = [] if self.central_noise else [update_norm(d) for d in deltas]
            return RoundResult(None, counts.metrics(norms, None), norms)
        if not deltas:
            return RoundResult(None, counts.metrics([], []))
        new: Arrays | None
        if self.central_noise is not None:
            total = self.central_noise.noised_sum(deltas)
            new = self.optimizer.step(current, mean_of_sum(total, max(sampled, 1)))
            keep, norms = list(range(len(deltas))), []
        else:
            new, scaled, norms = apply_updates(
                current,
                deltas,
                self.optimizer,
                aggregation=self.aggregation,
                trim_fraction=self.trim_fraction,
                norm_factor=self.update_norm_factor,
            )
            keep = list(range(len(deltas)))
            for i in scaled:
                logger.warning(
                    "round %d: update from node %s scaled down to the bound: norm %.3g > %.1f x "
                    "median %.3g",
                    server_round,
                    valid[i].node,
                    norms[i],
                    self.update_norm_factor,
                    float(np.median(norms)),
                )
        metrics = counts.metrics(norms, keep)
        if self.central_noise is None:
            metrics["clients-norm-bounded"] = float(len(scaled))
        if new is not None:
            metrics.update(summarise_train([dict(valid[i].metrics) for i in keep]))
        return RoundResult(new, metrics, norms)

    def aggregate_secure(
        self, server_round: int, current: Arrays, secure: SecureSum
    ) -> RoundResult:
        """The round's new model from a secure sum: averaged over the clients sampled.

        The server never sees single updates, so nothing is screened; a client that refused
        (privacy budget) sent noise only and is counted in ``clients-out-of-budget``.
        """
        out_of_budget = sum(1 for r in secure.metrics if r.get(BUDGET_EXHAUSTED))
        counts = _Counts(
            sampled=secure.sampled,
            timed_out=0,  # dropouts are in clients-failed
            failed=secure.failures,
            out_of_budget=out_of_budget,
            malformed=0,
        )
        metrics = counts.metrics([], list(range(len(secure.metrics) - out_of_budget)))
        metrics["secagg-survivors"] = float(secure.survivors)
        if secure.total is None:
            return RoundResult(None, metrics)
        if secure.failures and not self.accept_failures:
            logger.warning(
                "round %d: %d client(s) dropped out and accept-failures is false: round discarded",
                server_round,
                secure.failures,
            )
            return RoundResult(None, metrics)
        new = self.optimizer.step(current, mean_of_sum(secure.total, secure.sampled))
        metrics.update(summarise_train([r for r in secure.metrics if not r.get(BUDGET_EXHAUSTED)]))
        return RoundResult(new, metrics)


def _delta(reply: Reply, current: Arrays) -> Arrays:
    """A valid reply's update: its model minus the round's."""
    assert reply.arrays is not None, "only a reply holding a model has an update"
    return {k: np.asarray(reply.arrays[k]) - ref for k, ref in current.items()}


def _valid(reply: Reply, current: Arrays) -> bool:
    """Whether a reply holds every tensor of the model, in shape and finite."""
    for name, ref in current.items():
        got = None if reply.arrays is None else reply.arrays.get(name)
        if got is None or np.shape(got) != ref.shape:
            logger.warning(
                "rejected update from node %s: %s missing or mis-shaped", reply.node, name
            )
            return False
        if not np.all(np.isfinite(got)):
            logger.warning(
                "rejected update from node %s: non-finite values in %s", reply.node, name
            )
            return False
    return True


@dataclass(frozen=True)
class _Counts:
    """Who took part in a round and how, before the screening by norm."""

    sampled: int
    timed_out: int
    failed: int
    out_of_budget: int
    malformed: int

    def metrics(self, norms: Sequence[float], keep: Sequence[int] | None) -> dict[str, float]:
        # keep=None: the round was discarded before screening, nobody's update was used.
        kept = 0 if keep is None else len(keep)
        screened_out = max(len(norms) - kept, 0) if keep is not None else 0
        stats = {
            "clients-sampled": float(self.sampled),
            "clients-timed-out": float(self.timed_out),
            "clients-ok": float(kept),
            "clients-failed": float(self.failed),
            "clients-out-of-budget": float(self.out_of_budget),
            "clients-rejected": float(self.malformed + screened_out),
        }
        if norms:
            stats["update-norm-median"] = float(np.median(norms))
            stats["update-norm-max"] = float(np.max(norms))
        return stats


def summarise_train(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The round's training metrics from what the kept clients sent (see the client task)."""

    def col(key: str) -> list[float]:
        return [float(r[key]) for r in rows if key in r]

    out: dict[str, float] = {}
    if col("train-loss"):
        out["train-loss"] = float(np.mean(col("train-loss")))
    eps = [e for e in col("epsilon") if e >= 0]
    if eps:
        out["epsilon-max"] = float(np.max(eps))
        out["epsilon-mean"] = float(np.mean(eps))
    if col("seconds"):
        out["client-seconds-mean"] = float(np.mean(col("seconds")))
    if col("user-epsilon"):
        out["user-epsilon-max"] = float(np.max(col("user-epsilon")))
    if col(DEVICE):
        out["clients-on-cuda"] = float(sum(1 for d in col(DEVICE) if d >= 0))
        out["clients-on-cpu"] = float(sum(1 for d in col(DEVICE) if d < 0))
    return out


class RunPrivacy:
    """What a run has spent after each round, as both drivers report it.

    Record level: the largest ε any client's own accountant reported (each client keeps its
    own; the run's guarantee is the worst of them). User level: the run's account
    (:class:`fedrec.server.user_dp.UserLevelAccountant`), one subsampled-Gaussian entry per
    round at the round's real sampling rate, and the largest ε a client's ledger reported.
    """

    def __init__(
        self, privacy: PrivacyConfig, user: UserLevelAccountant, *, epsilon: float = 0.0
    ) -> None:
        self.privacy = privacy
        self.user = user
        self.epsilon = epsilon

    def after_round(
        self, row: dict[str, Any], *, available: int, federated_evaluation: bool = False
    ) -> dict[str, object] | None:
        """Account one round; adds ``epsilon`` / ``user-epsilon`` to ``row``.

        Returns the user-level report (``None`` when user-level DP is off).
        """
        self.epsilon = max(self.epsilon, float(row.get("epsilon-max", 0.0)))
        if self.privacy.dp_enabled:
            row["epsilon"] = self.epsilon
        self.user.record_round(sampled=int(row.get("clients-sampled", 0)), available=available)
        self.user.observe_clients(row.get("user-epsilon-max"))
        report = self.user.report(federated_evaluation=federated_evaluation)
        if report is not None:
            row["user-epsilon"] = report["epsilon"]
        return report

    def record_report(self, *, federated_evaluation: bool = False) -> dict[str, Any] | None:
        """The record-level report of the run so far (``None`` without DP-SGD)."""
        epsilon = self.epsilon if self.privacy.dp_enabled else None
        return report_for(self.privacy, epsilon, federated_evaluation=federated_evaluation)


def progress_line(row: Mapping[str, Any], num_rounds: int, *, k: int = 10) -> str:
    """One log line per round: who took part, loss, ε spent, federated HR/NDCG, time."""
    parts = [
        f"round {row['round']}/{num_rounds}",
        f"clients {int(row.get('clients-ok', 0))} ok"
        f"/{int(row.get('clients-failed', 0))} failed"
        f"/{int(row.get('clients-rejected', 0))} rejected",
    ]
    if row.get("clients-timed-out"):
        parts[-1] += f"/{int(row['clients-timed-out'])} timed out"
    if row.get("clients-out-of-budget"):
        parts[-1] += f"/{int(row['clients-out-of-budget'])} out of ε budget"
    if "clients-on-cpu" in row or "clients-on-cuda" in row:
        parts.append(
            f"devices {int(row.get('clients-on-cpu', 0))} cpu"
            f"/{int(row.get('clients-on-cuda', 0))} cuda"
        )
    if "train-loss" in row:
        parts.append(f"loss {row['train-loss']:.4f}")
    if "epsilon" in row:
        parts.append(f"eps {row['epsilon']:.2f}")
    if "user-epsilon" in row:
        parts.append(f"user eps {row['user-epsilon']:.2f}")
    if f"eval/ndcg@{k}_full" in row:
        parts.append(
            f"HR@{k} {row[f'eval/hr@{k}_full']:.4f} NDCG@{k} "
            f"{row[f'eval/ndcg@{k}_full']:.4f} ({int(row.get('eval/n_users', 0))} users)"
        )
    parts.append(f"{row['seconds']:.1f}s")
    return " | ".join(parts)
