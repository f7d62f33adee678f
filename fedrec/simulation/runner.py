"""Run a federation on Flower's simulation engine (Ray backend) from Python or the CLI.

``flwr run .`` does the same from ``pyproject.toml``; this entry point exists so the CLI,
the benchmarks and the tests can pass settings as a dict and pick the number of actors.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from fedrec.client.client_app import build_client_app
from fedrec.server.server_app import build_server_app
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.simulation.evaluate import write_federation_info
from fedrec.simulation.faults import fault_mod, split_faults

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
        gpu_fraction = 0.25 if torch.cuda.is_available() else 0.0
    init_args: dict[str, Any] = {"include_dashboard": False}
    if ray_address:
        init_args["address"] = ray_address
    else:
        init_args["num_cpus"] = os.cpu_count() or 1
    return {
        "client_resources": {"num_cpus": num_cpus_per_client, "num_gpus": gpu_fraction},
        "init_args": init_args,
    }


def simulate(
    overrides: dict[str, Any] | None = None,
    *,
    num_supernodes: int | None = None,
    num_cpus_per_client: float = 1.0,
    gpu_fraction: float | None = None,
    ray_address: str | None = None,
    verbose: bool = False,
) -> Path:
    """Run the federation; ``num_supernodes`` defaults to one client per user.

    ``overrides`` may also hold the simulated faults (``failure-rate``, ``straggler-rate``,
    ``straggler-seconds``; :mod:`fedrec.simulation.faults`), which only a simulation has.

    ``output-dir`` is made absolute first so the server and every Ray actor agree on where
    checkpoints and client state live, whatever their working directory.
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
    if not cfg.federation.min_available_nodes:
        # Wait for every simulated client before round 1 samples (see FederationConfig).
        overrides["min-available-nodes"] = n
    run_dir = Path(cfg.output.output_dir) / cfg.output.run_name
    write_federation_info(run_dir, n)
    run_simulation(
        server_app=build_server_app(overrides),
        client_app=build_client_app(
            overrides,
            train_mods=[fault_mod(faults, seed=cfg.data.seed)] if faults.active else [],
        ),
        num_supernodes=n,
        backend_config=backend_config(  # type: ignore[arg-type]
            num_cpus_per_client=num_cpus_per_client,
            gpu_fraction=gpu_fraction,
            ray_address=ray_address,
        ),
        verbose_logging=verbose,
    )
    return run_dir
