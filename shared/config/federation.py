"""Rounds, client sampling and the server's aggregation (``num-rounds``, ``strategy``, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from fedrec.shared.config.validate import check
from fedrec.shared.errors import ConfigError

FEDERATED_EVALUATION = ("auto", "on", "off")
# The server optimizers and update combiners fedrec.server.aggregation implements; named here
# so that validating a config never imports the server.
STRATEGIES = ("fedavg", "fedavgm", "fedadam", "fedyogi")
AGGREGATIONS = ("mean", "trimmed-mean", "median")
# FedAvg's server learning rate: a row of the item table is moved by the few clients that saw
# it, then averaged over all sampled clients, and a rate well above 1 undoes that dilution.
FEDAVG_SERVER_LEARNING_RATE = 100.0
# FedAdam / FedYogi step every coordinate by about this much per round, whatever the size of
# its averaged update (Reddi et al. 2021 tune it in [1e-3, 1]).
ADAPTIVE_SERVER_LEARNING_RATE = 0.01


def default_server_learning_rate(strategy: str, momentum: float) -> float:
    """The server learning rate a strategy uses when ``server-learning-rate`` is 0.

    ``fedavg``: :data:`FEDAVG_SERVER_LEARNING_RATE`. ``fedavgm``: the same scaled by
    ``1 - momentum``, so that its steady-state step equals FedAvg's. ``fedadam`` and
    ``fedyogi``: :data:`ADAPTIVE_SERVER_LEARNING_RATE` (their steps are normalised per
    coordinate, so FedAvg's rate would move every coordinate by about 100 each round).
    """
    if strategy == "fedavg":
        return FEDAVG_SERVER_LEARNING_RATE
    if strategy == "fedavgm":
        return FEDAVG_SERVER_LEARNING_RATE * (1.0 - momentum)
    if strategy in ("fedadam", "fedyogi"):
        return ADAPTIVE_SERVER_LEARNING_RATE
    raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


@dataclass(frozen=True)
class FederationConfig:
    """Rounds, client sampling and server-side aggregation."""

    # DP noise is independent per client, so it averages out over the clients of a round:
    # every client in every round, for few rounds, beats a small sample over many rounds at
    # the same epsilon (docs/privacy.md, "Choosing parameters").
    num_rounds: int = 5
    fraction_train: float = 1.0
    fraction_evaluate: float = 0.1
    min_train_nodes: int = 2
    # A round starts only once this many clients are connected (0: min-train-nodes). The
    # simulation sets it to the number of simulated clients, so that round 1 does not sample
    # from the few that happened to register first.
    min_available_nodes: int = 0
    final_evaluate_all: bool = True
    # Federated evaluation: each sampled client ranks its held-out item and sends metrics.
    # They are computed from the records without noise, so no DP guarantee covers them:
    # auto runs it without DP and skips it under any DP (record or user level); on runs it
    # anyway (the privacy reports then say so); off never runs it.
    federated_evaluation: str = "auto"
    personalize_epochs: int = 5  # on-device fit of the private factor before ranking
    # The server optimizer's learning rate of the item table; 0: the strategy's own default
    # (default_server_learning_rate). Read it through FederationConfig.server_lr.
    server_learning_rate: float = 0.0
    # Server learning rate of the dense global tensors (text heads, adapters): every client
    # updates all of them, so there is no dilution to undo.
    dense_server_learning_rate: float = 1.0
    # Server optimizer: fedavg (SGD), fedavgm (momentum), fedadam, fedyogi.
    strategy: str = "fedavg"
    server_momentum: float = 0.9  # FedAvgM momentum; beta1 of FedAdam/FedYogi
    server_beta2: float = 0.99
    server_tau: float = 1e-3  # adaptivity floor of FedAdam/FedYogi
    # How deltas are combined: mean, trimmed-mean (trim-fraction cut at each end), median.
    aggregation: str = "mean"
    trim_fraction: float = 0.1
    # Reject updates whose norm exceeds this multiple of the round's median norm (0 = off).
    update_norm_factor: float = 20.0
    # A round waits this long for replies; late clients (stragglers) are left out.
    round_timeout: float = 3600.0
    # At most this many messages outstanding at once (0: all of a round's at once). Bounds
    # the cost of Flower's in-memory message store, which scans every stored message for
    # each node it serves (server/messaging.py; the round times are in
    # docs/benchmarks/README.md, "Reading federation.md"). A deployment whose clients are
    # slow devices may want more of them training at once (docs/deployment.md).
    max_in_flight: int = 64
    # false: a round with any failed client is discarded (the global model stays as it was).
    accept_failures: bool = True
    # fedrec simulate only: the simulated users one worker trains per message. 0: the round's
    # users split evenly over one worker per core, in messages whose replies stay within a
    # byte budget (server/cohorts.py); 1: one user per node (Flower's default simulation,
    # and the fallback under user-dp=secagg); K: at most K users per message.
    # Flower's cost is per message, so fewer, larger messages make a round faster; what
    # each user trains, sends and spends is the same (client/cohort.py).
    simulation_users_per_message: int = 0

    def __post_init__(self) -> None:
        check(self.num_rounds >= 1, "num-rounds must be >= 1")
        check(0 < self.fraction_train <= 1, "fraction-train must be in (0, 1]")
        check(0 <= self.fraction_evaluate <= 1, "fraction-evaluate must be in [0, 1]")
        check(self.min_train_nodes >= 1, "min-train-nodes must be >= 1")
        check(self.min_available_nodes >= 0, "min-available-nodes must be >= 0")
        check(
            self.server_learning_rate >= 0,
            "server-learning-rate must be >= 0 (0: the strategy's default)",
        )
        check(self.dense_server_learning_rate > 0, "dense-server-learning-rate must be > 0")
        check(self.personalize_epochs >= 0, "personalize-epochs must be >= 0")
        check(
            self.federated_evaluation in FEDERATED_EVALUATION,
            "federated-evaluation must be one of "
            f"{', '.join(FEDERATED_EVALUATION)}, got {self.federated_evaluation!r}",
        )
        check(
            self.strategy in STRATEGIES,
            f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}",
        )
        check(
            self.aggregation in AGGREGATIONS,
            f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {self.aggregation!r}",
        )
        check(0 <= self.server_momentum < 1, "server-momentum must be in [0, 1)")
        check(0 < self.server_beta2 < 1, "server-beta2 must be in (0, 1)")
        check(self.server_tau > 0, "server-tau must be > 0")
        check(0 <= self.trim_fraction < 0.5, "trim-fraction must be in [0, 0.5)")
        check(self.update_norm_factor >= 0, "update-norm-factor must be >= 0")
        check(self.round_timeout > 0, "round-timeout must be > 0")
        check(self.max_in_flight >= 0, "max-in-flight must be >= 0")
        check(
            self.simulation_users_per_message >= 0,
            "simulation-users-per-message must be >= 0 (0: split over the workers)",
        )

    @property
    def server_lr(self) -> float:
        """The item table's server learning rate in use (``server-learning-rate`` or default)."""
        if self.server_learning_rate > 0:
            return self.server_learning_rate
        return default_server_learning_rate(self.strategy, self.server_momentum)
