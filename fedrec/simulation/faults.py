"""Simulated client faults: failures and stragglers, a Flower mod only simulations install.

Real federations lose clients mid-round (apps killed, networks gone) and wait on slow
ones. ``fedrec simulate`` reproduces both so that tests and benchmarks can show that a
round still completes and says how many clients took part. The settings are not part of
the app's config (a deployed client has no reason to fail on purpose): the simulation
takes them out of its settings (:func:`split_faults`) and wraps the train handler in
:func:`fault_mod`. Draws are seeded per client and round.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Context, Message
from flwr.clientapp.typing import ClientAppCallable, Mod

from fedrec.shared.errors import ConfigError
from fedrec.shared.protocol import SERVER_ROUND

FAULT_KEYS = ("failure-rate", "straggler-rate", "straggler-seconds")


class SimulatedClientFailure(RuntimeError):
    """Raised by a client that was drawn to fail this round."""


@dataclass(frozen=True)
class FaultConfig:
    """Simulated faults (all off by default).

    Each sampled client fails its training with probability ``failure-rate`` and sleeps
    ``straggler-seconds`` first with probability ``straggler-rate``.
    """

    failure_rate: float = 0.0
    straggler_rate: float = 0.0
    straggler_seconds: float = 0.0

    def __post_init__(self) -> None:
        for name, ok, rule in (
            ("failure-rate", 0 <= self.failure_rate <= 1, "in [0, 1]"),
            ("straggler-rate", 0 <= self.straggler_rate <= 1, "in [0, 1]"),
            ("straggler-seconds", self.straggler_seconds >= 0, ">= 0"),
        ):
            if not ok:
                raise ConfigError(f"{name} must be {rule}")

    @property
    def active(self) -> bool:
        """Whether any fault can happen."""
        return self.failure_rate > 0 or (self.straggler_rate > 0 and self.straggler_seconds > 0)


def split_faults(settings: Mapping[str, Any]) -> tuple[dict[str, Any], FaultConfig]:
    """``settings`` without the fault keys, and the faults they asked for."""
    rest = {k: v for k, v in settings.items() if k.replace("_", "-") not in FAULT_KEYS}
    given = {k.replace("_", "-"): v for k, v in settings.items() if k not in rest}
    try:
        faults = FaultConfig(**{k.replace("-", "_"): float(v) for k, v in given.items()})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"fault settings {given}: {err}") from None
    return rest, faults


def inject_faults(faults: FaultConfig, *, seed: int, partition_id: int, server_round: int) -> None:
    """Maybe sleep (straggler), maybe raise (failure); the draw is fixed per client and round."""
    if faults.failure_rate <= 0 and faults.straggler_rate <= 0:
        return
    rng = np.random.default_rng([seed, partition_id, server_round])
    fail, straggle = rng.random(2)
    if straggle < faults.straggler_rate and faults.straggler_seconds > 0:
        time.sleep(faults.straggler_seconds)
    if fail < faults.failure_rate:
        raise SimulatedClientFailure(
            f"partition {partition_id} failed in round {server_round} "
            f"(simulated, failure-rate={faults.failure_rate})"
        )


def fault_mod(faults: FaultConfig, *, seed: int) -> Mod:
    """A train-handler mod that injects ``faults`` before the client trains."""

    def mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        config = msg.content.config_records["config"]
        inject_faults(
            faults,
            seed=seed,
            partition_id=int(context.node_config["partition-id"]),
            server_round=int(config[SERVER_ROUND]),  # type: ignore[arg-type]
        )
        return call_next(msg, context)

    return mod
