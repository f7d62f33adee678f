"""The server half of SecAgg+: one training round summed under it (``user-dp = secagg``).

The client half is ``client/secagg.py``: the two modules share a name because they are the
two ends of one protocol (its message keys are in :mod:`fedrec.shared.protocol`).

Flower 1.42 ships SecAgg+ as :class:`flwr.server.workflow.SecAggPlusWorkflow` (server) and
:func:`flwr.client.mod.secaggplus_mod` (client). The workflow belongs to Flower's legacy
stack: it takes a ``LegacyContext`` whose legacy ``Strategy`` says which clients train
(``configure_fit``) and receives the unmasked aggregate (``aggregate_fit``), and it talks to
the clients in four rounds of ``train`` messages over the same :class:`Grid` fedrec's own
loop uses (setup and public keys, encrypted key shares, masked vectors, unmasking).

fedrec keeps its own loop and sampling and runs the workflow as is, for the training half of
a round:

1. :class:`~fedrec.server.strategy.FedRecStrategy` samples the round's clients exactly as
   without SecAgg (its ``configure_train`` messages);
2. :class:`_SampledClients`, a legacy strategy, hands those clients and their instructions
   (the global model and the round's config, in Flower's legacy ``FitIns`` form) to the
   workflow and keeps the aggregate it gets back;
3. each client (``client/secagg.py``) trains, clips its update, adds its share of the noise
   and masks it; the workflow unmasks only the sum of the survivors' vectors.

The workflow computes a weighted *mean*; every client weighs 1 (``max_weight = 1``), so
the sum is the mean times the number of survivors. SecAgg+ works on integers: each value is
clipped to ``[-clipping_range, clipping_range]`` and stochastically rounded to
``quantization_range`` levels. fedrec sets the range to the clip bound plus 10 standard
deviations of a client's noise share (a coordinate of a clipped update is at most ``C``), so
values are never cut in practice, and the levels so that the sum of all clients' integers
cannot wrap around the 2^32 modulus.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.common import (
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.secure_aggregation.quantization import dequantize, quantize
from flwr.server import LegacyContext
from flwr.server.client_manager import ClientManager, SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.server.workflow.secure_aggregation.secaggplus_workflow import WorkflowState
from flwr.serverapp import Grid

from fedrec.server.messaging import send_and_receive
from fedrec.server.rounds import SecureSum
from fedrec.shared.config import PrivacyConfig
from fedrec.shared.privacy import share_survivors, survivor_floor
from fedrec.shared.protocol import SECAGG_TENSORS
from fedrec.shared.serialization import arrays_to_numpy, content_bytes

Arrays = dict[str, np.ndarray]

logger = logging.getLogger(__name__)

MODULUS = 2**32
# Flower's SecAgg+ stages, in the order a round runs them (the names its costs go by).
STAGES = ("setup", "share-keys", "collect-masked-vectors", "unmask")
MAX_LEVELS = 2**22
NOISE_MARGIN = 10.0  # clipping range = C + this many std of the largest noise share


def clipping_range(privacy: PrivacyConfig) -> float:
    """The per-value range SecAgg+ quantizes: ``C`` plus 10 std of a noise share.

    A share is ``σC / sqrt(t)`` with ``t >= 2`` (Flower's smallest threshold), so a value
    exceeds the range only if its noise is beyond 10 std: probability below 2e-23.
    """
    clip, sigma = privacy.user_clip, privacy.user_noise_multiplier
    return clip + NOISE_MARGIN * sigma * clip / math.sqrt(2)


def shares_fraction(privacy: PrivacyConfig, n_sampled: int) -> float:
    """``secagg-num-shares`` as the fraction of the sampled clients Flower's workflow takes.

    A count above 1 is turned into a fraction (capped at all of them), so that a small
    round still gets a valid share graph.
    """
    shares = privacy.secagg_num_shares
    if shares > 1:
        return float(min(1.0, shares / max(n_sampled, 1)))
    return float(shares)


# Past this much Shamir work per round (clients x shares x threshold: each client evaluates
# a polynomial of degree t - 1 at each of its shares, Flower's Shamir sharing in Python), a
# SecAgg+ round's key stages take minutes on a small machine (docs/benchmarks/secagg.md).
MANY_SHARE_TERMS = 500_000


def key_pairs_warning(privacy: PrivacyConfig, n_sampled: int) -> str | None:
    """A warning when the share graph makes a round's key stages slow, else None."""
    shares, t = secagg_shares(privacy, n_sampled), secagg_threshold(privacy, n_sampled)
    if n_sampled * shares * t < MANY_SHARE_TERMS:
        return None
    return (
        f"SecAgg+ over {n_sampled} clients with {shares} shares each (threshold {t}): each "
        "client's key stage grows with shares x threshold, the round's with clients times that "
        "(docs/benchmarks/secagg.md); fewer shares (secagg-num-shares) cost less but lower the "
        "survivors each noise share is sized for, so the sum carries more noise, unless a "
        "survivor floor (secagg-min-survivors) keeps it near central placement's "
        "(docs/privacy.md)"
    )


def secagg_shares(privacy: PrivacyConfig, n_sampled: int) -> int:
    """How many clients each client shares its keys with, itself included (Flower's rule).

    Flower 1.42's ``SecAggPlusWorkflow``: round(fraction x sampled), made odd when below
    all of them, all of them when at most 2. The clients form a ring, each with the
    ``shares // 2`` on either side as neighbours.
    """
    shares = round(shares_fraction(privacy, n_sampled) * n_sampled)
    if shares < n_sampled and shares % 2 == 0:
        shares += 1
    if shares <= 2:
        shares = n_sampled
    return shares


def secagg_threshold(privacy: PrivacyConfig, n_sampled: int) -> int:
    """The fewest survivors SecAgg+ unmasks for, by Flower's rule for float parameters.

    threshold = max(round(reconstruction threshold x shares), 2), shares as
    :func:`secagg_shares`. Each client's noise share is sized for this many survivors.
    """
    shares = secagg_shares(privacy, n_sampled)
    return max(round(privacy.secagg_reconstruction_threshold * shares), 2)


def noise_survivors(privacy: PrivacyConfig, n_sampled: int) -> int:
    """The survivors each client's noise share is sized for in a round of ``n_sampled``.

    :func:`secagg_threshold`, or the server's survivor floor (``secagg-min-survivors``)
    where that is higher; the clients compute the same from the protocol's parameters
    (``client/message_config.py``), and the workflow unmasks no sum of fewer.
    """
    return share_survivors(
        secagg_threshold(privacy, n_sampled), n_sampled, privacy.secagg_min_survivors
    )


def quantization_levels(n_clients: int) -> int:
    """Levels per value such that ``n_clients`` of them summed stay below the modulus."""
    return int(min(MAX_LEVELS, (MODULUS - 1) // max(n_clients, 1)))


@dataclass(frozen=True)
class _Node:
    """Stands in for a legacy ``ClientProxy``: the workflow only reads ``node_id``."""

    node_id: int


class _ConnectedNodes(SimpleClientManager):
    """A client manager that only answers how many nodes are connected (for Flower's log)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def num_available(self) -> int:
        """Connected nodes."""
        return self.n


class _SampledClients(Strategy):
    """The legacy strategy the workflow drives: fixed fit instructions, keeps the aggregate."""

    def __init__(self, fitins: dict[int, FitIns]) -> None:
        self.fitins = fitins
        self.aggregate: Parameters | None = None
        self.results: list[FitRes] = []
        self.failures = 0

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """Not used: fedrec's loop owns the model."""
        return None

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """The clients fedrec's strategy sampled, each with its instructions."""
        return [(cast(ClientProxy, _Node(nid)), ins) for nid, ins in self.fitins.items()]

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Keep the unmasked mean (the workflow put it into every result) and the metrics."""
        self.results = [res for _, res in results]
        self.failures = len(failures)
        self.aggregate = results[0][1].parameters if results else None
        return self.aggregate, {}

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """Not used: fedrec evaluates over the Message API."""
        return []

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """Not used."""
        return None, {}

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        """Not used."""
        return None


@dataclass
class StageCost:
    """One SecAgg+ stage of one round as the server saw it: its time and its messages.

    ``seconds`` is the whole stage on the server; ``wait_seconds`` the part spent waiting
    for the clients' replies (their work and the transport), the rest the server's own
    (building the messages, summing the masked vectors, removing the masks). Bytes are
    :func:`~fedrec.shared.serialization.content_bytes` of what was sent and received.
    """

    stage: str
    seconds: float = 0.0
    wait_seconds: float = 0.0
    messages: int = 0  # sent, one per client still in the round
    replies: int = 0  # received without an error
    sent_bytes: int = 0  # to all clients together
    received_bytes: int = 0  # from all clients together
    largest_reply_bytes: int = 0  # from one client

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


class _MeteredGrid:
    """The round's grid, each ``send_and_receive`` windowed, timed and weighed into ``cost``.

    Flower's workflow sends a stage's messages to every client at once; here they go out at
    most ``max_in_flight`` at a time (:func:`fedrec.server.messaging.send_and_receive`, as
    fedrec's own rounds do), with the same replies.
    """

    def __init__(
        self, grid: Grid, cost: StageCost, max_in_flight: int, errors: dict[int, str]
    ) -> None:
        self.grid, self.cost, self.max_in_flight = grid, cost, max_in_flight
        self.errors = errors  # node -> why it failed, the round's first reason per node

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """The stage's messages, windowed; the wait and the contents' bytes into its cost."""
        sent = list(messages)
        started = time.perf_counter()
        replies = send_and_receive(
            self.grid, sent, timeout=timeout, max_in_flight=self.max_in_flight
        )
        cost = self.cost
        cost.wait_seconds += time.perf_counter() - started
        cost.messages += len(sent)
        cost.sent_bytes += sum(content_bytes(m.content) for m in sent)
        # An error reply the SuperLink writes for a silent node comes from the SuperLink:
        # the node is the one the answered message went to.
        to = {m.metadata.message_id: m.metadata.dst_node_id for m in sent}
        for reply in replies:
            if reply.has_error():
                node = to.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)
                self.errors.setdefault(node, reply.error.reason or "")
            else:
                size = content_bytes(reply.content)
                cost.replies += 1
                cost.received_bytes += size
                cost.largest_reply_bytes = max(cost.largest_reply_bytes, size)
        return replies

    def __getattr__(self, name: str) -> Any:
        return getattr(self.grid, name)


Stage = Callable[[Grid, LegacyContext, WorkflowState], bool]


def forget_early_dropouts(state: WorkflowState) -> None:
    """Drop from the round the nodes that failed before their key shares went out.

    A node that fails in the setup or share-keys stage (a SuperNode killed as the round
    starts) sent no key shares that reached anyone: no other node masks its vector with
    it (a client masks with the nodes whose shares it received) and no one holds shares of
    its keys. Flower 1.42's workflow still counts it among the sampled nodes, so its unmask
    stage asks for shares of its key, finds none and halts the round that the others
    trained for, and spent their privacy budget on. Without it in the round the sum of the
    others is unmasked as usual (each noise share is sized for the threshold, which the
    survivors must still reach). A node lost later, after its shares went out, stays
    sampled: its pairwise masks are in the others' vectors and its key shares remove them.
    """
    gone = state.sampled_node_ids - state.active_node_ids
    if not gone:
        return
    state.sampled_node_ids = state.sampled_node_ids - gone
    for nid in state.sampled_node_ids:
        state.nid_to_neighbours[nid] = state.nid_to_neighbours[nid] - gone


class _TimedWorkflow(SecAggPlusWorkflow):
    """Flower's SecAgg+ workflow, each of its four stages windowed, timed and weighed.

    The protocol is Flower's, unchanged; only how its messages reach the grid differs
    (:class:`_MeteredGrid`), and the round halts before unmasking a sum of fewer than
    ``min_survivors`` masked vectors (the survivor floor the noise shares are sized for).
    """

    def __init__(
        self, *args: Any, max_in_flight: int = 0, min_survivors: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_in_flight = max_in_flight
        self.min_survivors = min_survivors
        self.costs: list[StageCost] = []
        self.errors: dict[int, str] = {}  # node -> why its reply was an error

    def _timed(
        self, name: str, stage: Stage, grid: Grid, context: LegacyContext, state: WorkflowState
    ) -> bool:
        cost = StageCost(name)
        self.costs.append(cost)
        started = time.perf_counter()
        try:
            metered = _MeteredGrid(grid, cost, self.max_in_flight, self.errors)
            return stage(cast(Grid, metered), context, state)
        finally:
            cost.seconds = time.perf_counter() - started

    def setup_stage(self, grid: Grid, context: LegacyContext, state: WorkflowState) -> bool:
        """Flower's setup stage: protocol parameters out, public keys back."""
        ok = self._timed(STAGES[0], super().setup_stage, grid, context, state)
        forget_early_dropouts(state)
        return ok

    def share_keys_stage(self, grid: Grid, context: LegacyContext, state: WorkflowState) -> bool:
        """Flower's share-keys stage: public keys out, encrypted key shares back."""
        ok = self._timed(STAGES[1], super().share_keys_stage, grid, context, state)
        forget_early_dropouts(state)
        return ok

    def collect_masked_vectors_stage(
        self, grid: Grid, context: LegacyContext, state: WorkflowState
    ) -> bool:
        """Flower's collect stage: key shares and the instructions out, masked vectors back.

        Halts when fewer than the survivor floor sent their vectors: the sum would carry
        less noise than each client's share was sized for.
        """
        ok = self._timed(STAGES[2], super().collect_masked_vectors_stage, grid, context, state)
        if ok and len(state.active_node_ids) < self.min_survivors:
            logger.warning(
                "SecAgg+: %d of %d clients sent masked vectors, below the survivor floor %d "
                "(secagg-min-survivors) their noise shares are sized for; the sum is not "
                "unmasked",
                len(state.active_node_ids),
                len(state.sampled_node_ids),
                self.min_survivors,
            )
            return False
        return ok

    def unmask_stage(self, grid: Grid, context: LegacyContext, state: WorkflowState) -> bool:
        """Flower's unmask stage: who survived out, the shares that remove the masks back."""
        return self._timed(STAGES[3], super().unmask_stage, grid, context, state)


def stages_line(costs: Sequence[StageCost]) -> str:
    """A round's stages for the log: seconds each, and what a client sent in all."""
    parts = ", ".join(f"{c.stage} {c.seconds:.1f} s" for c in costs)
    sent = sum(c.received_bytes / c.replies for c in costs if c.replies)
    return f"{parts}; each client sent {sent / 2**20:.2f} MiB"


def _fitins(message: Message, names: Sequence[str]) -> FitIns:
    arrays = arrays_to_numpy(message.content.array_records["arrays"])
    config: dict[str, Any] = dict(message.content["config"])
    config[SECAGG_TENSORS] = list(names)
    return FitIns(ndarrays_to_parameters([arrays[n] for n in names]), config)


def secure_sum(
    grid: Grid,
    messages: Sequence[Message],
    *,
    server_round: int,
    privacy: PrivacyConfig,
    timeout: float | None,
    clipping: float | None = None,
    max_in_flight: int = 0,
) -> SecureSum:
    """Run SecAgg+ over the clients ``messages`` are for; the sum of what they sent.

    ``messages`` are the round's ``train`` messages from fedrec's strategy (one per sampled
    client, all with the same global model). The clients answer with their clipped, noised
    update; the server learns only the sum over the clients that survived until their masked
    vectors were collected (``survivors``), or nothing if too few survived. Each stage's
    messages go out at most ``max_in_flight`` at a time (0: all at once, as Flower does).
    """
    out = SecureSum(sampled=len(messages))
    if not messages:
        return out
    names = list(messages[0].content["arrays"].keys())
    fitins = {m.metadata.dst_node_id: _fitins(m, names) for m in messages}
    strategy = _SampledClients(fitins)
    context = LegacyContext(
        Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={}),
        strategy=strategy,
        client_manager=_ConnectedNodes(len(list(grid.get_node_ids()))),
    )
    context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
        {WorkflowKey.CURRENT_ROUND: server_round}
    )
    context.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord()
    warning = key_pairs_warning(privacy, len(messages))
    if warning is not None:
        logger.warning(warning)
    workflow = _TimedWorkflow(
        num_shares=shares_fraction(privacy, len(messages)),
        reconstruction_threshold=float(privacy.secagg_reconstruction_threshold),
        max_weight=1.0,
        clipping_range=clipping if clipping is not None else clipping_range(privacy),
        quantization_range=quantization_levels(len(messages)),
        modulus_range=MODULUS,
        timeout=timeout,
        max_in_flight=max_in_flight,
        min_survivors=survivor_floor(len(messages), privacy.secagg_min_survivors),
    )
    workflow(grid, context)
    out.stages = [c.to_dict() for c in workflow.costs]
    out.errors = dict(workflow.errors)
    logger.info("round %d: SecAgg+ %s", server_round, stages_line(workflow.costs))
    out.failures = out.sampled - len(strategy.results)
    if strategy.aggregate is None:
        logger.warning(
            "round %d: SecAgg+ halted (too few clients survived to unmask the sum, or fewer "
            "than the survivor floor); no update",
            server_round,
        )
        return out
    out.survivors = len(strategy.results)
    mean = parameters_to_ndarrays(strategy.aggregate)
    out.total = {
        n: np.asarray(v, np.float64) * out.survivors for n, v in zip(names, mean, strict=True)
    }
    out.metrics = [dict(res.metrics) for res in strategy.results]
    return out


class SecureSumAccumulator:
    """SecAgg+'s integer arithmetic, one vector at a time (what the server unmasks).

    Each vector is quantized as Flower's ``secaggplus_mod`` does (clip to
    ``[-clipping_range, clipping_range]``, stochastic rounding to ``levels``) and its
    integers are added; :meth:`total` dequantizes and shifts back as Flower's workflow does.
    The masks are left out: they cancel exactly in the integer sum. Streaming, so a large
    vector per client costs one vector of memory, not one per client.
    """

    def __init__(self, clipping_range: float, levels: int) -> None:
        self.clipping_range = float(clipping_range)
        self.levels = int(levels)
        self.count = 0
        self._totals: dict[str, np.ndarray] = {}

    def add(self, vector: Arrays) -> None:
        """Quantize one client's vectors and add their integers."""
        names = list(vector)
        if self._totals and names != list(self._totals):
            raise ValueError(f"expected tensors {list(self._totals)}, got {names}")
        quantized = quantize([vector[n] for n in names], self.clipping_range, self.levels)
        for name, q in zip(names, quantized, strict=True):
            if name in self._totals:
                self._totals[name] += q
            else:
                self._totals[name] = np.asarray(q, np.int64).copy()
        self.count += 1

    def merge(self, other: SecureSumAccumulator) -> None:
        """Add another accumulator's integers (same range and levels): the sum of both."""
        if (other.clipping_range, other.levels) != (self.clipping_range, self.levels):
            raise ValueError("accumulators of different ranges or levels do not add up")
        if not other.count:
            return
        if self._totals and list(other._totals) != list(self._totals):
            raise ValueError(f"expected tensors {list(self._totals)}, got {list(other._totals)}")
        for name, q in other._totals.items():
            if name in self._totals:
                self._totals[name] += q
            else:
                self._totals[name] = q.copy()
        self.count += other.count

    def total(self) -> Arrays:
        """The dequantized sum of every vector added."""
        if not self.count:
            raise ValueError("no vectors to sum")
        names = list(self._totals)
        summed = dequantize([self._totals[n] for n in names], self.clipping_range, self.levels)
        offset = -(self.count - 1) * self.clipping_range
        return {n: np.asarray(v, np.float64) + offset for n, v in zip(names, summed, strict=True)}


def unmasked_secure_sum(vectors: Sequence[Arrays], privacy: PrivacyConfig) -> Arrays:
    """The sum SecAgg+ would unmask for ``vectors``, by its arithmetic, without the masks.

    The range and levels are those of a training round (see the module docstring), chosen
    so that the sum cannot wrap.
    """
    if not vectors:
        raise ValueError("no vectors to sum")
    acc = SecureSumAccumulator(clipping_range(privacy), quantization_levels(len(vectors)))
    for vec in vectors:
        acc.add(vec)
    return acc.total()
