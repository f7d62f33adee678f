"""The federation's strategy: Flower's FedAvg sampling, fedrec's round rules.

Sampling and message construction are Flower's (:class:`flwr.serverapp.strategy.FedAvg`).
Aggregation is replaced by :class:`fedrec.server.rounds.RoundRules`, the same rules the
plain loop applies: this class only turns Flower's messages into the round's replies and
the round's result back into Flower's records. In a simulation whose nodes are workers
(:class:`fedrec.server.cohorts.SimulatedUsers`) it samples users instead of nodes, one
message per worker, and splits each worker's reply into its users' replies. Updates are
combined unweighted: weighting by example counts would make the server depend on -- and
leak -- dataset sizes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, cast

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedrec.server.aggregation import ServerOptimizer, ServerSGD
from fedrec.server.cohorts import SimulatedUsers, evaluate_records, members_of, user_replies
from fedrec.server.rounds import Reply, RoundResult, RoundRules, SecureSum
from fedrec.server.user_dp import CentralNoise, central_noise_for
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import ConfigError
from fedrec.shared.evaluation import aggregate_client_metrics
from fedrec.shared.protocol import WEIGHT
from fedrec.shared.serialization import arrays_to_numpy, arrays_view, numpy_to_arrays

logger = logging.getLogger(__name__)


class _HealthyNodes:
    """The grid as sampling sees it: without the nodes whose node config is invalid."""

    def __init__(self, grid: Grid, excluded: dict[int | str, str]) -> None:
        self._grid = grid
        self._excluded = excluded

    def get_node_ids(self) -> list[int]:
        return [n for n in self._grid.get_node_ids() if n not in self._excluded]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


def _aggregate_eval(records: list[RecordDict], weight_key: str) -> MetricRecord:
    rows = []
    for rec in records:
        metrics = next(iter(rec.metric_records.values()))
        rows.append({k: float(v) for k, v in metrics.items() if k != weight_key})  # type: ignore[arg-type]
    return MetricRecord(dict(aggregate_client_metrics(rows)))


class FedRecStrategy(FedAvg):
    """Flower's FedAvg sampling over the global tensors, fedrec's :class:`RoundRules`."""

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
        users: SimulatedUsers | None = None,
    ) -> None:
        super().__init__(
            fraction_train=fraction_train,
            fraction_evaluate=fraction_evaluate,
            min_train_nodes=min_train_nodes,
            min_evaluate_nodes=1,
            min_available_nodes=max(min_train_nodes, min_available_nodes),
            weighted_by_key=WEIGHT,
            evaluate_metrics_aggr_fn=_aggregate_eval,
        )
        self.optimizer = optimizer or ServerSGD(server_learning_rate)
        self.rules = RoundRules(
            self.optimizer,
            aggregation=aggregation,
            trim_fraction=trim_fraction,
            update_norm_factor=update_norm_factor,
            accept_failures=accept_failures,
            central_noise=central_noise,
        )
        self._current: dict[str, np.ndarray] | None = None
        self._sent = 0
        self.last_round_stats: dict[str, Any] = {}
        self.last_available = 0  # connected clients when the round was sampled
        self._asked: list[Message] = []  # the messages of the round's last stage
        # Set: the nodes are workers, and the users they train are sampled here.
        self.users = users

    @classmethod
    def from_config(
        cls, cfg: FedRecConfig, optimizer: ServerOptimizer, *, users: SimulatedUsers | None = None
    ) -> FedRecStrategy:
        """The strategy a run's settings ask for, applying updates with ``optimizer``.

        ``users``: a simulation whose nodes are workers training these users.
        """
        fed = cfg.federation
        central = central_noise_for(cfg) if cfg.privacy.user_dp == "central" else None
        return cls(
            fraction_train=fed.fraction_train,
            fraction_evaluate=fed.fraction_evaluate,
            min_train_nodes=fed.min_train_nodes,
            min_available_nodes=fed.min_available_nodes,
            optimizer=optimizer,
            aggregation=fed.aggregation,
            trim_fraction=fed.trim_fraction,
            update_norm_factor=fed.update_norm_factor,
            accept_failures=fed.accept_failures,
            central_noise=central,
            users=users,
        )

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global model the clients start from, then sample as FedAvg does."""
        self._current = arrays_to_numpy(arrays)
        if self.users is not None:
            self.last_available = self.wait_for_clients(grid)
            users = self._sample_users(self.fraction_train, self.min_train_nodes)
            config["server-round"] = server_round  # as FedAvg injects it
            self._asked = self.users.messages(
                users, arrays, config, list(grid.get_node_ids()), MessageType.TRAIN
            )
            self._sent = len(users)
            return self._asked
        grid = self._healthy(grid)
        self._wait_for_nodes(grid)
        self.last_available = len(list(grid.get_node_ids()))
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self._sent = len(messages)
        self._asked = messages
        return messages

    def _sample_users(self, fraction: float, minimum: int) -> list[int]:
        assert self.users is not None
        users = self.users.sample(fraction, minimum, excluded=self.rules.misconfigured)
        logger.debug("sampled %d of %d users", len(users), self.users.num_users)
        return users

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample as FedAvg does, once enough clients are connected."""
        if self.users is not None:
            self.wait_for_clients(grid)
            if self.fraction_evaluate == 0.0:
                self._asked = []
                return []
            users = self._sample_users(self.fraction_evaluate, self.min_evaluate_nodes)
            config["server-round"] = server_round
            self._asked = self.users.messages(
                users, arrays, config, list(grid.get_node_ids()), MessageType.EVALUATE
            )
            return self._asked
        grid = self._healthy(grid)
        self._wait_for_nodes(grid)
        self._asked = list(super().configure_evaluate(server_round, arrays, config, grid))
        return self._asked

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """FedAvg's weighted mean; a node that cannot run with its node config is left out."""
        replies = list(replies)
        if self.users is not None:
            answers = self._user_replies(replies)
            self.rules.screen_failures(server_round, answers)
            records = evaluate_records(answers)
            return _aggregate_eval(records, WEIGHT) if records else None
        senders = self._senders()
        failed = [_reply(m, senders) for m in replies if m.has_error()]
        self.rules.screen_failures(server_round, failed)
        return super().aggregate_evaluate(server_round, replies)

    def wait_for_clients(self, grid: Grid) -> int:
        """How many clients are connected, once at least ``min_available_nodes`` are.

        With simulated users on workers: the users, once every worker is connected.
        """
        if self.users is not None:
            self._wait_for_nodes(grid, wanted=self.users.workers)
            return self.users.num_users
        grid = self._healthy(grid)
        self._wait_for_nodes(grid)
        return len(list(grid.get_node_ids()))

    def _senders(self) -> dict[str, int]:
        """Who each reply is from, by the message it answers (Flower sets ids on push)."""
        return {
            m.metadata.message_id: m.metadata.dst_node_id
            for m in self._asked
            if m.metadata.message_id
        }

    def _healthy(self, grid: Grid) -> Grid:
        """``grid`` without the misconfigured nodes; refuses when only they are missing."""
        if not self.rules.misconfigured:
            return grid
        healthy = _HealthyNodes(grid, self.rules.misconfigured)
        connected = len(list(grid.get_node_ids()))
        if len(healthy.get_node_ids()) < self.min_available_nodes <= connected:
            reasons = "; ".join(f"node {n}: {why}" for n, why in self.rules.misconfigured.items())
            raise ConfigError(
                f"the run needs {self.min_available_nodes} nodes and {connected} are connected, "
                f"but {len(self.rules.misconfigured)} of them cannot train with their node "
                f"config ({reasons}); fix those and restart them, then resume the run"
            )
        return cast(Grid, healthy)

    def _wait_for_nodes(
        self, grid: Grid, poll_s: float = 0.05, *, wanted: int | None = None
    ) -> None:
        # FedAvg sizes its sample from the nodes connected *before* it waits for
        # min_available_nodes, so round 1 of a simulation could sample a fraction of the
        # first few nodes to register. Waiting first makes fraction-train mean what it says.
        wanted = self.min_available_nodes if wanted is None else wanted
        if len(list(grid.get_node_ids())) < wanted:
            logger.info("waiting for %d clients to connect", wanted)
        while len(list(grid.get_node_ids())) < wanted:
            time.sleep(poll_s)

    def _user_replies(self, replies: list[Message]) -> list[Reply]:
        """The users' replies in the workers' replies (see :mod:`fedrec.server.cohorts`)."""
        members = members_of(self._asked)
        out: list[Reply] = []
        for m in replies:
            error = _short_reason(m.error.reason or "") if m.has_error() else None
            out += user_replies(m, members.get(m.metadata.reply_to_message_id, []), error)
        return out

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The round's new model from the clients' replies (:meth:`RoundRules.aggregate`)."""
        assert self._current is not None, "configure_train first: it fixes the round's model"
        replies = list(replies)
        if self.users is not None:
            answers = self._user_replies(replies)
        else:
            senders = self._senders()
            answers = [_reply(m, senders) for m in replies]
        result = self.rules.aggregate(server_round, self._current, answers, sampled=self._sent)
        return self._answer(result)

    def aggregate_secure(
        self, server_round: int, secure: SecureSum
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The round's new model from a SecAgg+ sum (:meth:`RoundRules.aggregate_secure`)."""
        assert self._current is not None, "configure_train first: it fixes the round's model"
        # Failures are screened as in plain rounds: logged, and a node that cannot train
        # with its node config is left out of the rest of the run instead of only counting
        # as a dropout every round.
        failed = [Reply(n, None, error=_short_reason(r)) for n, r in secure.errors.items()]
        self.rules.screen_failures(server_round, failed)
        return self._answer(self.rules.aggregate_secure(server_round, self._current, secure))

    def _answer(self, result: RoundResult) -> tuple[ArrayRecord | None, MetricRecord]:
        self.last_round_stats = dict(result.metrics)
        arrays = None if result.model is None else numpy_to_arrays(result.model)
        return arrays, MetricRecord(dict(result.metrics))


def _reply(message: Message, senders: dict[str, int] | None = None) -> Reply:
    """A Flower reply as the round sees it.

    An error reply the SuperLink writes for a node (it went silent) comes from the
    SuperLink's own id: the node is then the one the answered message went to.
    """
    node = (senders or {}).get(message.metadata.reply_to_message_id, message.metadata.src_node_id)
    if message.has_error():
        return Reply(node, None, error=_short_reason(message.error.reason or ""))
    metrics = dict(message.content["metrics"])
    return Reply(node, arrays_view(message.content.array_records["arrays"]), metrics)


def _short_reason(reason: str, limit: int = 300) -> str:
    """The last line of a (possibly multi-page, Ray-wrapped) client traceback."""
    lines = [line.strip() for line in reason.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else reason
    return last if len(last) <= limit else last[: limit - 3] + "..."
