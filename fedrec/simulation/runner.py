"""Run a federation on Flower's simulation engine (Ray backend) from Python or the CLI.

``flwr run .`` does the same from ``pyproject.toml``; this entry point exists so the CLI,
the benchmarks and the tests can pass settings as a dict and pick the number of actors.

By default the SuperNodes are a few *workers* (one per core) and the server samples the
simulated users and sends each worker the users it trains
(``simulation-users-per-message``; :mod:`fedrec.server.cohorts`): Flower's cost is then
paid per worker message, not per user. Under ``user-dp = secagg``, with simulated faults
and for the co-occurrence release every user is its own SuperNode, as before.

Flower 1.42 has no in-process entry point besides the deprecated ``run_simulation``:
``flwr run`` submits the app to a SuperLink, whose ``flwr-simulation`` process loads the
apps from ``pyproject.toml`` (no programmatic overrides, no fault mods). So this keeps
``run_simulation`` and prints its deprecation warning once instead of twice.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedrec.client.client_app import build_client_app
from fedrec.server.cohorts import SimulatedUsers
from fedrec.server.server_app import build_server_app
from fedrec.shared.checkpoint import write_federation_info
from fedrec.shared.cohort_messages import check_cohorts_allowed
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.errors import ConfigError
from fedrec.simulation.faults import FaultConfig, fault_mod, split_faults

# Device files a GPU driver creates (NVIDIA's, AMD's for ROCm builds of torch).
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/kfd")

if TYPE_CHECKING:
    from flwr.serverapp import ServerApp

logger = logging.getLogger(__name__)


def backend_config(
    *,
    num_cpus_per_client: float = 1.0,
    gpu_fraction: float | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Ray resources: one actor per CPU core by default; GPU fractions when CUDA exists.

    ``ray_address`` (e.g. ``"auto"``) joins an existing Ray cluster instead of starting a
    local one; the cluster's own resources are used then.
    """
    if gpu_fraction is None:
        gpu_fraction = 0.25 if cuda_available() else 0.0
    init_args: dict[str, Any] = {"include_dashboard": False}
    if ray_address:
        init_args["address"] = ray_address
    else:
        init_args["num_cpus"] = os.cpu_count() or 1
    return {
        "client_resources": {"num_cpus": num_cpus_per_client, "num_gpus": gpu_fraction},
        "init_args": init_args,
    }


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, without importing torch on a machine with no GPU driver.

    The server process trains nothing; importing torch only to learn there is no GPU would
    be most of its memory.
    """
    if not any(os.path.exists(path) for path in GPU_DEVICE_FILES):
        return False
    import torch

    return bool(torch.cuda.is_available())


def default_workers(num_cpus_per_client: float = 1.0) -> int:
    """As many workers as the local Ray backend runs actors at once (one per core)."""
    return max(1, int((os.cpu_count() or 1) / num_cpus_per_client))


def simulated_users(
    cfg: FedRecConfig, num_partitions: int, faults: FaultConfig, *, workers: int
) -> SimulatedUsers | None:
    """The users ``workers`` worker nodes train, or ``None``: one SuperNode per user.

    Says in one line why a run that could use workers does not.
    """
    per_message = cfg.federation.simulation_users_per_message
    if per_message == 1 or cfg.train.model == "cooccurrence":
        return None  # asked for; the co-occurrence release has its own message plan
    try:
        check_cohorts_allowed(cfg)
    except ConfigError as why:
        logger.info("one SuperNode per user: %s", why)
        return None
    if faults.active:
        logger.info(
            "one SuperNode per user: simulated faults are drawn per node, and a worker's "
            "failure would fail all of its users"
        )
        return None
    return SimulatedUsers(num_partitions, min(workers, num_partitions), per_message)


def simulate(
    overrides: dict[str, Any] | None = None,
    *,
    num_supernodes: int | None = None,
    num_workers: int | None = None,
    num_cpus_per_client: float = 1.0,
    gpu_fraction: float | None = None,
    ray_address: str | None = None,
    verbose: bool = False,
    server_app: Callable[[dict[str, Any]], ServerApp] | None = None,
) -> Path:
    """Run the federation; ``num_supernodes`` clients, by default one per user.

    The clients are trained by ``num_workers`` worker SuperNodes (default: one per core),
    unless ``simulation-users-per-message = 1`` or the run needs one SuperNode per client
    (:func:`simulated_users`).

    ``overrides`` may also hold the simulated faults (``failure-rate``, ``straggler-rate``,
    ``straggler-seconds``; :mod:`fedrec.simulation.faults`), which only a simulation has.

    ``output-dir`` is made absolute first so the server and every Ray actor agree on where
    checkpoints and client state live, whatever their working directory.

    ``server_app`` builds the ServerApp from the run's final overrides (a benchmark's, that
    runs part of a federation and measures it); by default the product's.
    """
    from flwr.simulation import run_simulation

    overrides, faults = split_faults(overrides or {})
    cfg: FedRecConfig = resolve_config({}, overrides)
    overrides["output-dir"] = str(Path(cfg.output.output_dir).resolve())
    cfg = resolve_config({}, overrides)
    _, split = load_split(cfg.data)
    n = num_supernodes or split.n_users
    if n > split.n_users:
        raise ValueError(f"{n} clients asked for, but the data set has only {split.n_users} users")
    who = "one user each" if n == split.n_users else "cross-silo"
    if cfg.train.model == "cooccurrence":
        logger.info(
            "simulating %d clients (%s): one co-occurrence release, user-dp %s",
            n,
            who,
            cfg.privacy.user_dp,
        )
    else:
        logger.info(
            "simulating %d clients (%s), %d rounds, fraction-train %.2f, DP %s",
            n,
            who,
            cfg.federation.num_rounds,
            cfg.federation.fraction_train,
            "on" if cfg.privacy.dp_enabled else "off",
        )
    users = simulated_users(
        cfg, n, faults, workers=num_workers or default_workers(num_cpus_per_client)
    )
    if users is not None:
        logger.info(
            "%d workers train the sampled clients (%s per message)",
            users.workers,
            f"at most {users.per_message}" if users.per_message else "split evenly",
        )
    elif not cfg.federation.min_available_nodes:
        # Wait for every simulated client before round 1 samples (see FederationConfig).
        overrides["min-available-nodes"] = n
    run_dir = Path(cfg.output.output_dir) / cfg.output.run_name
    write_federation_info(run_dir, n)
    _quiet_start_up()
    run_simulation(
        server_app=(
            build_server_app(overrides, users=users)
            if server_app is None
            else server_app(overrides)
        ),
        client_app=build_client_app(
            overrides,
            train_mods=[fault_mod(faults, seed=cfg.data.seed)] if faults.active else [],
        ),
        num_supernodes=n if users is None else users.workers,
        backend_config=backend_config(  # type: ignore[arg-type]
            num_cpus_per_client=num_cpus_per_client,
            gpu_fraction=gpu_fraction,
            ray_address=ray_address,
        ),
        verbose_logging=verbose,
    )
    return run_dir


def _quiet_start_up() -> None:
    """Each of Flower's lines once, and none of Ray's tips about its own future defaults."""
    # Flower's logger has its own console handler; passing its records on to the root
    # logger's (the CLI's, or the one importing Opacus adds) printed each of them twice.
    logging.getLogger("flwr").propagate = False
    warnings.filterwarnings(
        "ignore", message="Tip: In future versions of Ray", category=FutureWarning
    )
