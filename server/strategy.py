"""FedAvg over the shared item parameters, with a server learning rate and update checks.

The aggregate is ``global + server_lr * mean_k(client_k - global)`` (an unweighted mean:
weighting by example counts would make the server depend on -- and leak -- dataset sizes).
With ``server_lr = 1`` this is plain FedAvg. Replies whose arrays are non-finite or have the
wrong shapes are rejected and logged, never averaged in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

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
    """FedAvg for MF: shared item factors only, server learning rate, finite-update check."""

    def __init__(
        self,
        *,
        fraction_train: float,
        fraction_evaluate: float,
        min_train_nodes: int,
        server_learning_rate: float = 1.0,
    ) -> None:
        super().__init__(
            fraction_train=fraction_train,
            fraction_evaluate=fraction_evaluate,
            min_train_nodes=min_train_nodes,
            min_evaluate_nodes=1,
            min_available_nodes=min_train_nodes,
            weighted_by_key="weight",
            evaluate_metrics_aggr_fn=_aggregate_eval,
        )
        self.server_learning_rate = server_learning_rate
        self._current: dict[str, np.ndarray] | None = None
        self.last_round_stats: dict[str, Any] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global model the clients start from, then sample as FedAvg does."""
        self._current = arrays_to_numpy(arrays)
        return super().configure_train(server_round, arrays, config, grid)

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
        """Server-lr FedAvg over valid updates; training metrics summarised, not averaged."""
        replies = list(replies)
        ok = [m for m in replies if not m.has_error()]
        failed = len(replies) - len(ok)
        for m in replies:
            if m.has_error():
                logger.warning(
                    "round %d: node %s failed: %s",
                    server_round,
                    m.metadata.src_node_id,
                    m.error.reason,
                )
        updates: list[dict[str, np.ndarray]] = []
        metric_rows: list[dict[str, Any]] = []
        for m in ok:
            update = arrays_to_numpy(m.content["arrays"])
            if self._valid_update(update, m.metadata.src_node_id):
                updates.append(update)
                metric_rows.append(dict(m.content["metrics"]))
        rejected = len(ok) - len(updates)
        self.last_round_stats = {
            "clients-sampled": float(len(replies)),
            "clients-ok": float(len(updates)),
            "clients-failed": float(failed),
            "clients-rejected": float(rejected),
        }
        if not updates or self._current is None:
            return None, MetricRecord(self.last_round_stats)
        new = {
            name: ref
            + self.server_learning_rate * np.mean([u[name] - ref for u in updates], axis=0)
            for name, ref in self._current.items()
        }
        metrics: dict[str, Any] = dict(self.last_round_stats)
        metrics.update(_summarise_train(metric_rows))
        return numpy_to_arrays({k: v.astype(np.float32) for k, v in new.items()}), MetricRecord(
            metrics
        )


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
    return out
