"""How the server turns the clients' updates of one round into a new global model.

Three steps, each a small function or class so that strategies are combinations of them:

1. :func:`bound_updates` scales every update whose norm is far above the round's typical
   norm down to that bound (norm bounding, Sun et al. 2019: a scale-free guard against
   poisoning and bugs that keeps an honest heavy user's update, with its direction, rather
   than dropping it; non-finite updates never get here).
2. :func:`combine` averages the surviving deltas: plain mean (FedAvg), coordinate-wise
   trimmed mean, or coordinate-wise median (robust aggregation).
3. A :class:`ServerOptimizer` applies the combined delta as a pseudo-gradient: SGD with a
   server learning rate (FedAvg), with momentum (FedAvgM), or Adam/Yogi (FedAdam/FedYogi,
   Reddi et al. 2021, "Adaptive Federated Optimization").

Flower ships FedAdam/FedYogi strategies too; fedrec keeps its own small optimizer because
its state (moments) must go into every checkpoint so that a resumed run continues exactly
where it stopped, and Flower's strategies keep it only in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, overload

import numpy as np

from fedrec.shared.config import AGGREGATIONS, STRATEGIES, FederationConfig
from fedrec.shared.privacy import update_norm

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]


def sum_updates(updates: Sequence[Mapping[str, np.ndarray]]) -> Arrays:
    """The coordinate-wise sum of ``updates`` (float64)."""
    if not updates:
        raise ValueError("no updates to sum")
    return {k: np.sum([np.asarray(u[k], np.float64) for u in updates], axis=0) for k in updates[0]}


def mean_of_sum(total: Mapping[str, np.ndarray], denominator: int) -> Arrays:
    """``total / denominator`` (the fixed-denominator average of a noised sum)."""
    if denominator < 1:
        raise ValueError(f"denominator must be >= 1, got {denominator}")
    return {k: np.asarray(v, np.float64) / denominator for k, v in total.items()}


def norm_bound(norms: Sequence[float], factor: float) -> float | None:
    """``factor`` x the median norm; ``None`` (no bound) for ``factor <= 0`` or < 3 updates.

    With fewer than 3 updates there is no meaningful "typical" norm.
    """
    if factor <= 0 or len(norms) < 3:
        return None
    return factor * float(np.median(norms))


class LazyDeltas(Sequence[Arrays]):
    """``size`` deltas, the ``i``-th computed by ``read(i)`` whenever it is read.

    A round's updates as a list of arrays would be another copy of every update the server
    holds; the norms and the running sum read them one at a time instead.
    """

    def __init__(self, size: int, read: Callable[[int], Arrays]) -> None:
        self._size = size
        self._read = read

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> Arrays: ...

    @overload
    def __getitem__(self, index: slice) -> list[Arrays]: ...

    def __getitem__(self, index: int | slice) -> Arrays | list[Arrays]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        return self._read(index % self._size)


def bound_updates(
    deltas: Sequence[Arrays], factor: float
) -> tuple[Sequence[Arrays], list[float], list[int]]:
    """Each delta scaled down to ``factor`` x the median norm if above it; norms; who was.

    Returns the (possibly scaled) deltas, every delta's norm before scaling, and the
    indices of those that were scaled. Nobody is dropped: a user with many records has a
    larger honest update, and bounding it keeps its direction in the average.
    """
    norms = [update_norm(d) for d in deltas]
    bound = norm_bound(norms, factor)
    if bound is None:
        return deltas, norms, []
    scales = {i: bound / norm for i, norm in enumerate(norms) if norm > bound > 0}

    def read(i: int) -> Arrays:
        scale = scales.get(i)
        if scale is None:
            return deltas[i]
        return {k: np.asarray(v, np.float64) * scale for k, v in deltas[i].items()}

    return LazyDeltas(len(deltas), read), norms, sorted(scales)


def combine(deltas: Sequence[Arrays], method: str, trim_fraction: float = 0.1) -> Arrays:
    """Coordinate-wise mean, trimmed mean or median of the deltas (unweighted)."""
    if not deltas:
        raise ValueError("no updates to combine")
    if method not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {method!r}")
    if method == "mean":
        # A running float64 sum, each delta read once: no [clients, ...] stack in memory.
        totals: Arrays = {}
        for d in deltas:
            if not totals:
                totals = {name: np.zeros(np.shape(v), dtype=np.float64) for name, v in d.items()}
            for name, total in totals.items():
                total += d[name]
        return {name: total / len(deltas) for name, total in totals.items()}
    out: Arrays = {}
    for name in deltas[0]:
        stack = np.stack([d[name] for d in deltas]).astype(np.float64)
        if method == "median":
            out[name] = np.median(stack, axis=0)
        else:
            # Drop the k largest and k smallest values of every coordinate.
            k = int(np.floor(trim_fraction * len(deltas)))
            if 2 * k >= len(deltas):
                k = (len(deltas) - 1) // 2
            kept = np.sort(stack, axis=0)[k : len(deltas) - k]
            out[name] = kept.mean(axis=0)
    return out


def apply_updates(
    current: Arrays,
    deltas: Sequence[Arrays],
    optimizer: ServerOptimizer,
    *,
    aggregation: str,
    trim_fraction: float,
    norm_factor: float,
) -> tuple[Arrays | None, list[int], list[float]]:
    """Bound, combine and apply ``deltas``: the new model (None if none), bounded, norms."""
    if not deltas:
        return None, [], []
    bounded, norms, scaled = bound_updates(deltas, norm_factor)
    delta = combine(bounded, aggregation, trim_fraction)
    return optimizer.step(current, delta), scaled, norms


class ServerOptimizer(Protocol):
    """Applies a combined delta (a pseudo-gradient pointing downhill) to the global model."""

    def step(self, params: Arrays, delta: Arrays) -> Arrays:
        """The new global parameters."""
        ...

    def state_dict(self) -> Arrays:
        """Tensors needed to continue exactly after a restart (empty when stateless)."""
        ...

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned."""
        ...


# Tensors whose rows only the clients that touched them move (the item table): their
# averaged delta is diluted by the clients that did not, which the server learning rate
# undoes. Every other global tensor (text heads, adapters) gets ``dense_lr``.
ROW_SPARSE = ("item_factors", "item_bias")


class ServerSGD:
    """``x + lr * delta``; with ``momentum > 0`` FedAvgM's heavy-ball momentum."""

    def __init__(self, lr: float, momentum: float = 0.0, dense_lr: float | None = None) -> None:
        self.lr, self.momentum = lr, momentum
        self.dense_lr = lr if dense_lr is None else dense_lr
        self.velocity: Arrays = {}

    def lr_of(self, name: str) -> float:
        """The learning rate of one global tensor (see :data:`ROW_SPARSE`)."""
        return self.lr if name in ROW_SPARSE else self.dense_lr

    def step(self, params: Arrays, delta: Arrays) -> Arrays:
        """One server step."""
        out: Arrays = {}
        for name, x in params.items():
            d = delta[name]
            if self.momentum > 0:
                v = self.momentum * self.velocity.get(name, np.zeros_like(d)) + d
                self.velocity[name] = v
                d = v
            out[name] = (x + self.lr_of(name) * d).astype(np.float32)
        return out

    def state_dict(self) -> Arrays:
        """Momentum buffers (empty for plain FedAvg)."""
        return {f"velocity.{k}": v.astype(np.float32) for k, v in self.velocity.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore momentum buffers."""
        self.velocity = {
            k.removeprefix("velocity."): np.asarray(v, np.float64)
            for k, v in state.items()
            if k.startswith("velocity.")
        }


class ServerAdaptive:
    """FedAdam / FedYogi: per-coordinate adaptive server steps (Reddi et al. 2021)."""

    def __init__(
        self,
        lr: float,
        *,
        yogi: bool,
        beta1: float = 0.9,
        beta2: float = 0.99,
        tau: float = 1e-3,
        dense_lr: float | None = None,
    ) -> None:
        self.lr, self.yogi, self.beta1, self.beta2, self.tau = lr, yogi, beta1, beta2, tau
        self.dense_lr = lr if dense_lr is None else dense_lr
        self.m: Arrays = {}
        self.v: Arrays = {}

    def lr_of(self, name: str) -> float:
        """The learning rate of one global tensor (see :data:`ROW_SPARSE`)."""
        return self.lr if name in ROW_SPARSE else self.dense_lr

    def step(self, params: Arrays, delta: Arrays) -> Arrays:
        """One server step (no bias correction, as in the paper)."""
        out: Arrays = {}
        for name, x in params.items():
            d = delta[name].astype(np.float64)
            m = self.beta1 * self.m.get(name, np.zeros_like(d)) + (1 - self.beta1) * d
            v_prev = self.v.get(name, np.full_like(d, self.tau**2))
            d2 = d * d
            if self.yogi:
                v = v_prev - (1 - self.beta2) * d2 * np.sign(v_prev - d2)
            else:
                v = self.beta2 * v_prev + (1 - self.beta2) * d2
            self.m[name], self.v[name] = m, v
            out[name] = (x + self.lr_of(name) * m / (np.sqrt(v) + self.tau)).astype(np.float32)
        return out

    def state_dict(self) -> Arrays:
        """First and second moments."""
        state = {f"m.{k}": v for k, v in self.m.items()}
        state.update({f"v.{k}": v for k, v in self.v.items()})
        return {k: v.astype(np.float32) for k, v in state.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore the moments."""
        self.m = {k[2:]: np.asarray(v, np.float64) for k, v in state.items() if k[:2] == "m."}
        self.v = {k[2:]: np.asarray(v, np.float64) for k, v in state.items() if k[:2] == "v."}


def server_optimizer_for(fed: FederationConfig) -> ServerOptimizer:
    """The server optimizer a federation's settings ask for."""
    return make_server_optimizer(
        fed.strategy,
        lr=fed.server_lr,
        momentum=fed.server_momentum,
        beta2=fed.server_beta2,
        tau=fed.server_tau,
        dense_lr=fed.dense_server_learning_rate,
    )


def make_server_optimizer(
    strategy: str,
    *,
    lr: float,
    momentum: float,
    beta2: float,
    tau: float,
    dense_lr: float | None = None,
) -> ServerOptimizer:
    """The server optimizer of a named strategy (see :data:`STRATEGIES`).

    ``dense_lr`` (default: ``lr``) is the rate of tensors outside :data:`ROW_SPARSE`.
    """
    dense = lr if dense_lr is None else dense_lr
    if strategy == "fedavg":
        return ServerSGD(lr, dense_lr=dense)
    if strategy == "fedavgm":
        return ServerSGD(lr, momentum=momentum, dense_lr=dense)
    if strategy in ("fedadam", "fedyogi"):
        return ServerAdaptive(
            lr, yogi=strategy == "fedyogi", beta1=momentum, beta2=beta2, tau=tau, dense_lr=dense
        )
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
