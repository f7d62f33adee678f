"""Flower ServerApp: the round loop, a checkpoint after every round, resume.

The loop is written out here (rather than ``Strategy.start``) because fedrec needs two
things the stock loop lacks: a versioned checkpoint after every round, and resuming a run
from its last checkpoint (:mod:`fedrec.server.resume`). Sampling and messages are Flower's
(:class:`~fedrec.server.strategy.FedRecStrategy`); what a round does with the replies is
:mod:`fedrec.server.rounds`, the same rules the plain loop applies.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedrec.server.aggregation import server_optimizer_for
from fedrec.server.cohorts import SimulatedUsers
from fedrec.server.messaging import send_and_receive
from fedrec.server.resume import committed_incarnations, start_of
from fedrec.server.round_config import EVAL_K, Asker, federated_evaluation
from fedrec.server.rounds import RunPrivacy, progress_line
from fedrec.server.secagg import secure_sum
from fedrec.server.strategy import FedRecStrategy
from fedrec.server.user_dp import UserLevelAccountant
from fedrec.shared.checkpoint import run_id, save_catalog, save_checkpoint
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import catalog_version, load_catalog
from fedrec.shared.logs import show_fedrec_logs
from fedrec.shared.models.text_cache import item_text_embeddings
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays

logger = logging.getLogger(__name__)


def run_federation(grid: Grid, cfg: FedRecConfig, *, users: SimulatedUsers | None = None) -> Path:
    """Run (or resume) the federation described by ``cfg``; returns the run directory.

    ``users``: a simulation whose nodes are workers that train these simulated users
    (``fedrec simulate`` with cohorts); ``None``: every node is a client.
    """
    if cfg.train.model == "cooccurrence":
        # Imported for it alone: it loads the model code (torch) the MF server never needs.
        from fedrec.server.cooccurrence import release_over_flower

        return release_over_flower(grid, cfg)
    # The server uses the public item catalogue only (under data-source=node it reads
    # nothing else: the clients hold their own data).
    catalog = load_catalog(cfg.data)
    if cfg.text.text_tower != "off":
        # Encode the catalogue once before any client needs it (simulated clients on this
        # machine then read the cache instead of each running the encoder).
        item_text_embeddings(cfg, catalog.texts)
    run_dir = Path(cfg.output.output_dir) / cfg.output.run_name
    save_catalog(run_dir, catalog)
    start = start_of(cfg, run_dir, len(catalog))
    # Fixed before any client trains, so a restarted server sends the same identity and
    # every client finds its own per-run state and ledger.
    identity = run_id(run_dir)
    evaluate = federated_evaluation(cfg)
    fed = cfg.federation
    if start.round > fed.num_rounds:
        logger.info("%s is complete (%d rounds); nothing to train", run_dir, fed.num_rounds)
        return run_dir
    optimizer = server_optimizer_for(fed)
    optimizer.load_state_dict(start.server_state)
    strategy = FedRecStrategy.from_config(cfg, optimizer, users=users)
    # The run's privacy, continued from the checkpoints on resume.
    spent = RunPrivacy(
        cfg.privacy, UserLevelAccountant.for_run(cfg.privacy, run_dir), epsilon=start.epsilon
    )
    # Which server process asks and where it resumed: a client whose latest round is >= start
    # and was trained for another process holds a lost round and rolls it back (client/state.py).
    asker = Asker(
        run_id=identity,
        catalog_sha256=catalog_version(catalog),
        resumed_from=start.round,
        incarnation=uuid.uuid4().hex,
        committed=committed_incarnations(start.history),
    )
    arrays, history = numpy_to_arrays(start.global_tensors), start.history
    for rnd in range(start.round, fed.num_rounds + 1):
        t0 = time.perf_counter()
        user = spent.user
        train_config = asker.train_config(
            user.train_config(strategy.wait_for_clients(grid)) if user.enabled else {}
        )
        messages = list(strategy.configure_train(rnd, arrays, train_config, grid))
        if cfg.privacy.user_dp == "secagg":
            # Flower's SecAgg+ over the sampled clients: the server learns the sum only.
            secure = secure_sum(
                grid,
                messages,
                server_round=rnd,
                privacy=cfg.privacy,
                timeout=fed.round_timeout,
                max_in_flight=fed.max_in_flight,
            )
            new_arrays, train_metrics = strategy.aggregate_secure(rnd, secure)
        else:
            # Passed on, never named here: the round's replies are freed once aggregated,
            # before the next round's arrive.
            new_arrays, train_metrics = strategy.aggregate_train(
                rnd,
                send_and_receive(
                    grid, messages, timeout=fed.round_timeout, max_in_flight=fed.max_in_flight
                ),
            )
        if new_arrays is not None:
            arrays = new_arrays
        row: dict[str, Any] = {"round": rnd, **dict(train_metrics or {})}
        user_privacy = spent.after_round(
            row, available=strategy.last_available, federated_evaluation=evaluate
        )
        final = rnd == fed.num_rounds
        strategy.fraction_evaluate = (
            1.0 if final and fed.final_evaluate_all else fed.fraction_evaluate
        )
        if evaluate and strategy.fraction_evaluate > 0:
            eval_config = asker.evaluate_config(personalize_epochs=fed.personalize_epochs)
            eval_replies = send_and_receive(
                grid,
                strategy.configure_evaluate(rnd, arrays, eval_config, grid),
                timeout=fed.round_timeout,
                max_in_flight=fed.max_in_flight,
            )
            eval_metrics = strategy.aggregate_evaluate(rnd, eval_replies)
            row.update({f"eval/{k}": float(v) for k, v in dict(eval_metrics or {}).items()})  # type: ignore[arg-type]
        row["seconds"] = time.perf_counter() - t0
        row["server-incarnation"] = asker.incarnation
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
            privacy=spent.record_report(federated_evaluation=evaluate),
            server_state=optimizer.state_dict(),
            user_privacy=user_privacy,
        )
        logger.info(progress_line(row, fed.num_rounds, k=EVAL_K))
    return run_dir


def build_server_app(
    overrides: dict[str, Any] | None = None, *, users: SimulatedUsers | None = None
) -> ServerApp:
    """A ServerApp whose settings are the run config with ``overrides`` on top.

    ``users``: the simulated users its worker nodes train (see :func:`run_federation`).
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        # In deployment this is a process of Flower's: without it fedrec's lines are lost.
        show_fedrec_logs()
        run_federation(grid, resolve_config(context.run_config, overrides), users=users)

    return app


app = build_server_app()
