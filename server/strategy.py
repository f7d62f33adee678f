"""The federation's strategy: Flower's FedAvg sampling, fedrec's aggregation of item params.

Sampling and message construction are Flower's (:class:`flwr.serverapp.strategy.FedAvg`).
Aggregation is replaced: replies whose arrays are non-finite or mis-shaped are rejected,
updates whose norm is far above the round's median are rejected, the rest are combined
(mean, trimmed mean or median; unweighted, since weighting by example counts would make the
server depend on -- and leak -- dataset sizes) and applied by a server optimizer (FedAvg,
FedAvgM, FedAdam, FedYogi; see :mod:`fedrec.server.aggregation`). Every rejection is logged
and counted in the round's metrics, never averaged in.

With user-level DP (``user-dp``) the server's part changes: ``central`` clips every update and
noises their sum once (:class:`fedrec.server.user_dp.CentralNoise`), ``secagg`` receives only
the noised sum (:meth:`FedRecStrategy.aggregate_secure`); both divide by the number of
clients sampled and skip norm screening (clipping bounds every update, and screening by the
round's median norm would make one user's update decide about another's).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedrec.server.aggregation import ServerOptimizer, ServerSGD, apply_updates, update_norm
from fedrec.server.secagg import SecureSum
from fedrec.server.user_dp import CentralNoise, mean_of_sum
from fedrec.shared.evaluation import aggregate_client_metrics
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays

logger = logging.getLogger(__name__)


def _aggregate_eval(records: list[RecordDict], weight_key: str) -> MetricRecord:
    rows = []
    for rec in records:
        metrics = next(iter(rec.metric_records.values()))
        rows.append({k: float(v) for k, v in metrics.items() if k != weight_key})  # type: ignore[arg-type]
    return MetricRecord(aggregate_client_metrics(rows))


class FedRecStrategy(FedAvg):
    """Shared item parameters only; screened, combined, then applied by a server optimizer."""

    def __init__(
        self,
        *,
        fraction_train: float,
        fraction_evaluate: float,
        min_train_nodes: int,
        min_available_nodes: int = 0,
        server_learning_rate: float = 1.0,
        optimizer: ServerOptimizer | None = None,
        aggregation: str = "mean",
        trim_fraction: float = 0.1,
        update_norm_factor: float = 0.0,
        accept_failures: bool = True,
        central_noise: CentralNoise | None = None,
    ) -> None:
        super().__init__(
            fraction_train=fraction_train,
            fraction_evaluate=fraction_evaluate,
            min_train_nodes=min_train_nodes,
            min_evaluate_nodes=1,
            min_available_nodes=max(min_train_nodes, min_available_nodes),
            weighted_by_key="weight",
            evaluate_metrics_aggr_fn=_aggregate_eval,
        )
        self.optimizer = optimizer or ServerSGD(server_learning_rate)
        self.aggregation = aggregation
        self.trim_fraction = trim_fraction
        self.update_norm_factor = update_norm_factor
        self.accept_failures = accept_failures
        self._current: dict[str, np.ndarray] | None = None
        self._sent = 0
        self._out_of_budget = 0
        self.last_round_stats: dict[str, Any] = {}
        # user-dp=central: clip and noise here. Norms of raw updates then stay private too.
        self.central_noise = central_noise
        self.last_available = 0  # connected clients when the round was sampled

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global model the clients start from, then sample as FedAvg does."""
        self._current = arrays_to_numpy(arrays)
        self._wait_for_nodes(grid)
        self.last_available = len(list(grid.get_node_ids()))
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self._sent = len(messages)
        return messages

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample as FedAvg does, once enough clients are connected."""
        self._wait_for_nodes(grid)
        return super().configure_evaluate(server_round, arrays, config, grid)

    def wait_for_clients(self, grid: Grid) -> int:
        """How many clients are connected, once at least ``min_available_nodes`` are."""
        self._wait_for_nodes(grid)
        return len(list(grid.get_node_ids()))

    def _wait_for_nodes(self, grid: Grid, poll_s: float = 0.05) -> None:
        # FedAvg sizes its sample from the nodes connected *before* it waits for
        # min_available_nodes, so round 1 of a simulation could sample a fraction of the
        # first few nodes to register. Waiting first makes fraction-train mean what it says.
        if len(list(grid.get_node_ids())) < self.min_available_nodes:
            logger.info("waiting for %d clients to connect", self.min_available_nodes)
        while len(list(grid.get_node_ids())) < self.min_available_nodes:
            time.sleep(poll_s)

    def _valid_update(self, update: dict[str, np.ndarray], node: int) -> bool:
        assert self._current is not None
        for name, ref in self._current.items():
            got = update.get(name)
            if got is None or got.shape != ref.shape:
                logger.warning("rejected update from node %s: %s missing or mis-shaped", node, name)
                return False
            if not np.all(np.isfinite(got)):
                logger.warning("rejected update from node %s: non-finite values in %s", node, name)
                return False
        return True

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Screen, combine and apply the valid updates; training metrics summarised."""
        replies = list(replies)
        ok = [m for m in replies if not m.has_error()]
        failed = len(replies) - len(ok)
        for m in replies:
            if m.has_error():
                logger.warning(
                    "round %d: node %s failed: %s",
                    server_round,
                    m.metadata.src_node_id,
                    _short_reason(m.error.reason or ""),
                )
        updates: list[dict[str, np.ndarray]] = []
        metric_rows: list[dict[str, Any]] = []
        nodes: list[int] = []
        out_of_budget = 0
        for m in ok:
            if m.content["metrics"].get("budget-exhausted"):
                out_of_budget += 1  # the client refused: its privacy budget is spent
                continue
            update = arrays_to_numpy(m.content["arrays"])
            if self._valid_update(update, m.metadata.src_node_id):
                updates.append(update)
                metric_rows.append(dict(m.content["metrics"]))
                nodes.append(m.metadata.src_node_id)
        malformed = len(ok) - len(updates) - out_of_budget
        self._out_of_budget = out_of_budget
        current = self._current
        deltas = [{k: u[k] - ref for k, ref in (current or {}).items()} for u in updates]
        if failed and not self.accept_failures:
            logger.warning(
                "round %d: %d client(s) failed and accept-failures is false: round discarded",
                server_round,
                failed,
            )
            norms = [] if self.central_noise else [update_norm(d) for d in deltas]
            self.last_round_stats = self._stats(len(replies), failed, malformed, norms, None)
            return None, MetricRecord(self.last_round_stats)
        new, keep, norms = None, list(range(len(deltas))), []
        if current is not None and deltas and self.central_noise is not None:
            # Clip each, sum, noise once; averaged over every sampled client. No screening:
            # clipping bounds each update, and norms of raw updates are not published.
            total = self.central_noise.noised_sum(deltas)
            new = self.optimizer.step(current, mean_of_sum(total, max(self._sent, 1)))
        elif current is not None and deltas:
            new, keep, norms = apply_updates(
                current,
                deltas,
                self.optimizer,
                aggregation=self.aggregation,
                trim_fraction=self.trim_fraction,
                norm_factor=self.update_norm_factor,
            )
            for i in sorted(set(range(len(deltas))) - set(keep)):
                logger.warning(
                    "round %d: rejected update from node %s: norm %.3g > %.1f x median %.3g",
                    server_round,
                    nodes[i],
                    norms[i],
                    self.update_norm_factor,
                    float(np.median(norms)),
                )
        self.last_round_stats = self._stats(len(replies), failed, malformed, norms, keep)
        if new is None:
            return None, MetricRecord(self.last_round_stats)
        metrics: dict[str, Any] = dict(self.last_round_stats)
        metrics.update(_summarise_train([metric_rows[i] for i in keep]))
        return numpy_to_arrays(new), MetricRecord(metrics)

    def aggregate_secure(
        self, server_round: int, secure: SecureSum
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Apply a SecAgg+ round: the noised sum over the clients, averaged over the sampled.

        The server never sees single updates, so nothing is screened; a client that refused
        (privacy budget) sent noise only and is counted in ``clients-out-of-budget``.
        """
        rows = secure.metrics
        self._out_of_budget = sum(1 for r in rows if r.get("budget-exhausted"))
        trained = len(rows) - self._out_of_budget
        keep = list(range(trained))
        self.last_round_stats = self._stats(secure.survivors, secure.failures, 0, [], keep)
        self.last_round_stats["clients-timed-out"] = 0.0  # dropouts are in clients-failed
        self.last_round_stats["clients-sampled"] = float(secure.sampled)
        self.last_round_stats["secagg-survivors"] = float(secure.survivors)
        if secure.total is None or self._current is None:
            return None, MetricRecord(self.last_round_stats)
        if secure.failures and not self.accept_failures:
            logger.warning(
                "round %d: %d client(s) dropped out and accept-failures is false: round discarded",
                server_round,
                secure.failures,
            )
            return None, MetricRecord(self.last_round_stats)
        new = self.optimizer.step(self._current, mean_of_sum(secure.total, secure.sampled))
        metrics: dict[str, Any] = dict(self.last_round_stats)
        metrics.update(_summarise_train([r for r in rows if not r.get("budget-exhausted")]))
        return numpy_to_arrays(new), MetricRecord(metrics)

    def _stats(
        self,
        n_replies: int,
        failed: int,
        malformed: int,
        norms: Sequence[float],
        keep: Sequence[int] | None,
    ) -> dict[str, Any]:
        # keep=None: the round was discarded before screening, nobody's update was used.
        kept = 0 if keep is None else len(keep)
        stats: dict[str, Any] = {
            "clients-sampled": float(max(self._sent, n_replies)),
            "clients-timed-out": float(max(self._sent - n_replies, 0)),
            "clients-ok": float(kept),
            "clients-failed": float(failed),
            "clients-out-of-budget": float(self._out_of_budget),
            "clients-rejected": float(
                malformed + (max(len(norms) - kept, 0) if keep is not None else 0)
            ),
        }
        if norms:
            stats["update-norm-median"] = float(np.median(norms))
            stats["update-norm-max"] = float(np.max(norms))
        return stats


def _short_reason(reason: str, limit: int = 300) -> str:
    """The last line of a (possibly multi-page, Ray-wrapped) client traceback."""
    lines = [line.strip() for line in reason.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else reason
    return last if len(last) <= limit else last[: limit - 3] + "..."


def _summarise_train(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
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
    return out
