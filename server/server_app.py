"""Flower ServerApp: rounds of FedAvg over shared item parameters, a checkpoint per round.

The round loop is written out here (rather than ``Strategy.start``) because fedrec needs
two things the stock loop lacks: a versioned checkpoint after every round, and resuming a
run from its last checkpoint. Sampling, message construction and aggregation stay with the
Flower strategy (:class:`fedrec.server.strategy.FedRecStrategy`).
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from fedrec.server.aggregation import server_optimizer_for
from fedrec.server.messaging import send_and_receive
from fedrec.server.secagg import secure_sum
from fedrec.server.strategy import FedRecStrategy
from fedrec.server.user_dp import UserLevelAccountant, central_noise_for
from fedrec.shared.checkpoint import (
    latest_round,
    load_checkpoint,
    run_id,
    save_catalog,
    save_checkpoint,
)
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_dataset
from fedrec.shared.errors import ConfigError
from fedrec.shared.models.factory import init_global, item_text_embeddings
from fedrec.shared.privacy import report_for
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays

logger = logging.getLogger(__name__)

EVAL_K = 10


def _start_state(
    cfg: FedRecConfig, run_dir: Path, n_items: int
) -> tuple[int, ArrayRecord, list[dict[str, Any]], float, dict[str, Any]]:
    """Round to start at, global arrays, history, epsilon and server optimizer state."""
    last = latest_round(run_dir)
    if last is None:
        shared = init_global(cfg, n_items)
        return 1, numpy_to_arrays(shared), [], 0.0, {}
    if not cfg.output.resume:
        raise ConfigError(
            f"{run_dir} already holds checkpoints up to round {last}; set resume=true to "
            "continue it, or choose another run-name"
        )
    ckpt = load_checkpoint(run_dir, round=last)
    saved = ckpt.manifest.get("config", {})
    for key in (
        "dataset",
        "data-path",
        "embedding-dim",
        "seed",
        "implicit-threshold",
        "strategy",
        "text-tower",
    ):
        if key in saved and saved[key] != cfg.to_run_config()[key]:
            raise ConfigError(
                f"cannot resume {run_dir}: {key} was {saved[key]!r}, now "
                f"{cfg.to_run_config()[key]!r}; use another run-name for new settings"
            )
    privacy = ckpt.manifest.get("privacy") or {}
    eps = float(privacy.get("epsilon") or 0.0)
    logger.info("resuming %s from round %d", run_dir, last)
    history = list(ckpt.manifest.get("history", []))
    return last + 1, numpy_to_arrays(ckpt.tensors), history, eps, dict(ckpt.server_state)


def committed_incarnations(history: list[dict[str, Any]]) -> list[str]:
    """``"token:first:last"`` for each server process that checkpointed rounds of this run."""
    spans: dict[str, list[int]] = {}
    for row in history:
        token = row.get("server-incarnation")
        if isinstance(token, str) and token:
            span = spans.setdefault(token, [int(row["round"]), int(row["round"])])
            span[0], span[1] = min(span[0], int(row["round"])), max(span[1], int(row["round"]))
    return [f"{token}:{first}:{last}" for token, (first, last) in spans.items()]


def _progress_line(row: dict[str, Any], num_rounds: int) -> str:
    parts = [
        f"round {row['round']}/{num_rounds}",
        f"clients {int(row.get('clients-ok', 0))} ok"
        f"/{int(row.get('clients-failed', 0))} failed"
        f"/{int(row.get('clients-rejected', 0))} rejected",
    ]
    if row.get("clients-timed-out"):
        parts[-1] += f"/{int(row['clients-timed-out'])} timed out"
    if row.get("clients-out-of-budget"):
        parts[-1] += f"/{int(row['clients-out-of-budget'])} out of ε budget"
    if "train-loss" in row:
        parts.append(f"loss {row['train-loss']:.4f}")
    if "epsilon" in row:
        parts.append(f"eps {row['epsilon']:.2f}")
    if "user-epsilon" in row:
        parts.append(f"user eps {row['user-epsilon']:.2f}")
    if f"eval/ndcg@{EVAL_K}_full" in row:
        parts.append(
            f"HR@{EVAL_K} {row[f'eval/hr@{EVAL_K}_full']:.4f} NDCG@{EVAL_K} "
            f"{row[f'eval/ndcg@{EVAL_K}_full']:.4f} ({int(row.get('eval/n_users', 0))} users)"
        )
    parts.append(f"{row['seconds']:.1f}s")
    return " | ".join(parts)


def run_federation(grid: Grid, cfg: FedRecConfig) -> Path:
    """Run (or resume) the federation described by ``cfg``; returns the run directory."""
    dataset = load_dataset(cfg.data)  # the server uses the public item catalogue only
    if cfg.text.text_tower != "off":
        # Encode the catalogue once before any client needs it (simulated clients on this
        # machine then read the cache instead of each running the encoder).
        item_text_embeddings(cfg, dataset.items.texts)
    run_dir = Path(cfg.output.output_dir) / cfg.output.run_name
    save_catalog(run_dir, dataset.items)
    start, arrays, history, eps_max, server_state = _start_state(cfg, run_dir, dataset.n_items)
    # Fixed before any client trains, so a restarted server sends the same identity and
    # every client finds its own per-run state and ledger.
    identity = run_id(run_dir)
    evaluate = cfg.federated_evaluation
    if not evaluate and cfg.any_dp and cfg.federation.federated_evaluation == "auto":
        logger.info(
            "federated evaluation is off under DP: its metrics would be computed from the "
            "clients' records without noise, which no guarantee covers "
            "(federated-evaluation=on runs it anyway; `fedrec evaluate` measures a "
            "simulation's checkpoints)"
        )
    fed = cfg.federation
    if start > fed.num_rounds:
        logger.info("%s is complete (%d rounds); nothing to train", run_dir, fed.num_rounds)
        return run_dir
    optimizer = server_optimizer_for(fed)
    optimizer.load_state_dict(server_state)
    strategy = FedRecStrategy(
        fraction_train=fed.fraction_train,
        fraction_evaluate=fed.fraction_evaluate,
        min_train_nodes=fed.min_train_nodes,
        min_available_nodes=fed.min_available_nodes,
        optimizer=optimizer,
        aggregation=fed.aggregation,
        trim_fraction=fed.trim_fraction,
        update_norm_factor=fed.update_norm_factor,
        accept_failures=fed.accept_failures,
        central_noise=central_noise_for(cfg) if cfg.privacy.user_dp == "central" else None,
    )
    # The run's user-level (epsilon, delta), continued from the checkpoints on resume.
    user = UserLevelAccountant.for_run(cfg.privacy, run_dir)
    # Which server process asks and where it resumed: a client whose latest round is >= start
    # and was trained for another process holds a lost round and rolls it back (client/state.py).
    # The rounds each earlier process checkpointed close the remaining gap: a round trained
    # for a process is lost exactly when that process did not checkpoint it.
    incarnation = uuid.uuid4().hex
    committed = committed_incarnations(history)
    for rnd in range(start, fed.num_rounds + 1):
        t0 = time.perf_counter()
        train_config = ConfigRecord(
            {
                "run-id": identity,
                "resumed-from": start,
                "server-incarnation": incarnation,
                "committed-incarnations": committed or [""],
                # user-dp and the run's user-level delta, for the clients' ledgers
                **(user.train_config(strategy.wait_for_clients(grid)) if user.enabled else {}),
            }
        )
        messages = strategy.configure_train(rnd, arrays, train_config, grid)
        if cfg.privacy.user_dp == "secagg":
            # Flower's SecAgg+ over the sampled clients: the server learns the sum only.
            secure = secure_sum(
                grid,
                list(messages),
                server_round=rnd,
                privacy=cfg.privacy,
                timeout=fed.round_timeout,
            )
            new_arrays, train_metrics = strategy.aggregate_secure(rnd, secure)
        else:
            replies = send_and_receive(
                grid, messages, timeout=fed.round_timeout, max_in_flight=fed.max_in_flight
            )
            new_arrays, train_metrics = strategy.aggregate_train(rnd, replies)
        if new_arrays is not None:
            arrays = new_arrays
        row: dict[str, Any] = {"round": rnd, **dict(train_metrics or {})}
        eps_max = max(eps_max, float(row.get("epsilon-max", 0.0)))
        if cfg.privacy.dp_enabled:
            row["epsilon"] = eps_max
        user.record_round(
            sampled=int(row.get("clients-sampled", 0)), available=strategy.last_available
        )
        user.observe_clients(row.get("user-epsilon-max"))
        user_privacy = user.report(federated_evaluation=evaluate)
        if user_privacy is not None:
            row["user-epsilon"] = user_privacy["epsilon"]

        final = rnd == fed.num_rounds
        strategy.fraction_evaluate = (
            1.0 if final and fed.final_evaluate_all else fed.fraction_evaluate
        )
        eval_config = ConfigRecord(
            {"k": EVAL_K, "personalize-epochs": fed.personalize_epochs, "run-id": identity}
        )
        if evaluate and strategy.fraction_evaluate > 0:
            eval_replies = send_and_receive(
                grid,
                strategy.configure_evaluate(rnd, arrays, eval_config, grid),
                timeout=fed.round_timeout,
                max_in_flight=fed.max_in_flight,
            )
            eval_metrics = strategy.aggregate_evaluate(rnd, eval_replies)
            row.update({f"eval/{k}": float(v) for k, v in dict(eval_metrics or {}).items()})  # type: ignore[arg-type]
        row["seconds"] = time.perf_counter() - t0
        row["server-incarnation"] = incarnation
        history.append(row)
        save_checkpoint(
            run_dir,
            round=rnd,
            tensors=arrays_to_numpy(arrays),
            run_name=cfg.output.run_name,
            kind="federated",
            config=cfg.to_run_config(),
            metrics=row,
            history=history,
            privacy=report_for(
                cfg.privacy,
                eps_max if cfg.privacy.dp_enabled else None,
                federated_evaluation=evaluate,
            ),
            server_state=optimizer.state_dict(),
            user_privacy=user_privacy,
        )
        logger.info(_progress_line(row, fed.num_rounds))
    return run_dir


def build_server_app(overrides: dict[str, Any] | None = None) -> ServerApp:
    """A ServerApp whose settings are the run config with ``overrides`` on top."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_federation(grid, resolve_config(context.run_config, overrides))

    return app


app = build_server_app()
