"""Simulated client faults: failures and stragglers, drawn from a seeded generator.

Real federations lose clients mid-round (apps killed, networks gone) and wait on slow
ones. These knobs reproduce both in simulation so that tests and benchmarks can show that
a round still completes and says how many clients took part.
"""

from __future__ import annotations

import time

import numpy as np

from fedrec.shared.config import FaultConfig


class SimulatedClientFailure(RuntimeError):
    """Raised by a client that was drawn to fail this round."""


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
