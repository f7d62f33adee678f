"""The ``fedrec`` command: data, training (central, co-occurrence, federated), serving, bench."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fedrec.cli.options import ConfigOpt, ScenarioOpt, overrides_from, setup_logging
from fedrec.shared.errors import FedRecError

app = typer.Typer(
    help="Federated, privacy-preserving recommendations (Flower + Opacus + FastAPI).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


@app.command()
def data(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
) -> None:
    """Load the data set, check it, and print what it holds and how it splits."""
    from fedrec.shared.config import resolve_config
    from fedrec.shared.data import load_split

    cfg = resolve_config({}, overrides_from(config, scenario))
    ds, split = load_split(cfg.data)
    n = len(ds.interactions)
    table = Table(title=f"{ds.name}")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = {
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": n,
        "density": f"{n / (ds.n_users * ds.n_items):.4%}",
        "train interactions": len(split.train),
        "users with a test item": int((split.test_items >= 0).sum()),
        "users with a validation item": int((split.valid_items >= 0).sum()),
        "example item text": ds.items.texts[0][:60],
    }
    for k, v in rows.items():
        table.add_row(k, str(v))
    console.print(table)


@app.command()
def catalog(
    out: Annotated[Path, typer.Option("--out", help="The catalogue file to write.")],
    items_csv: Annotated[
        Path | None,
        typer.Option(
            "--items", help="An items CSV (item,title[,genres]); else the data set's items."
        ),
    ] = None,
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
) -> None:
    """Write the item catalogue: the file data-source=node runs and nodes import."""
    from fedrec.shared.config import resolve_config
    from fedrec.shared.data import catalog_json, catalog_version, load_dataset
    from fedrec.shared.data.catalog import build_catalog
    from fedrec.shared.data.generic import read_generic_items

    if items_csv is not None:
        items = build_catalog(read_generic_items(items_csv))
    else:
        items = load_dataset(resolve_config({}, overrides_from(config, scenario)).data).items
    if out.exists():
        raise typer.BadParameter(f"{out} already exists; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(catalog_json(items), encoding="utf-8")
    console.print(f"{out}: {len(items)} items, version {catalog_version(items)[:12]}")


@app.command("train-central")
def train_central_cmd(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    epochs: Annotated[
        int, typer.Option(help="Maximum epochs (early stopping on validation).")
    ] = 40,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate.")] = 0.005,
) -> None:
    """Train the centralized reference MF model and write a servable checkpoint."""
    from fedrec.simulation.central import run_central

    setup_logging()
    overrides = overrides_from(config, scenario)
    overrides.setdefault("run-name", "central")
    result = run_central(overrides, epochs=epochs, learning_rate=learning_rate)
    console.print_json(json.dumps(result["test"]))
    console.print(f"checkpoint: {result['run_dir']}")


@app.command("train-cooccurrence")
def train_cooccurrence_cmd(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
) -> None:
    """Train the private co-occurrence model: every user releases its co-occurrence once.

    Noise placement from user-dp (secagg by default here: the server sees only the SecAgg+
    sum), ε from cooccurrence-epsilon; writes a servable checkpoint.
    """
    from rich.progress import Progress

    from fedrec.simulation.cooccurrence import train_cooccurrence

    setup_logging()
    overrides = overrides_from(config, scenario)
    overrides.setdefault("user-dp", "secagg")
    overrides.setdefault("run-name", "cooccurrence")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("clients releasing their co-occurrence", total=None)
        result = train_cooccurrence(
            overrides, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    privacy = result.plan
    if privacy.epsilon is None:
        console.print("privacy: none (user-dp = off: the exact co-occurrence was released)")
    else:
        console.print(
            f"privacy: ({privacy.epsilon:.2f}, {privacy.delta:.3g})-DP per user "
            f"(placement {privacy.placement}, σ on the sum {privacy.noise_multiplier:.3f})"
        )
    console.print(
        f"test NDCG@10 {result.test['ndcg@10_full']:.4f}, HR@10 {result.test['hr@10_full']:.4f} "
        f"({result.seconds:.0f} s; each client sent {result.bytes_per_client / 1e6:.1f} MB; a "
        f"device downloads {result.item_model_bytes / 1e6:.1f} MB to rank on its own)"
    )
    console.print(f"checkpoint: {result.run_dir}")


@app.command()
def simulate(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    num_supernodes: Annotated[
        int | None, typer.Option(help="Simulated clients (default: one per user).")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Join a running Ray cluster (e.g. 'auto').")
    ] = None,
    verbose: Annotated[bool, typer.Option(help="Show Flower's and Ray's logs too.")] = False,
) -> None:
    """Run a federation on Flower's simulation engine; a checkpoint is written each round."""
    from fedrec.simulation.runner import simulate as run

    setup_logging(verbose)
    run_dir = run(
        overrides_from(config, scenario),
        num_supernodes=num_supernodes,
        ray_address=ray_address,
        verbose=verbose,
    )
    console.print(f"run directory: {run_dir}")


@app.command()
def evaluate(
    model_path: Annotated[
        Path, typer.Argument(help="A run directory (or checkpoint) to evaluate.")
    ],
    personalize_epochs: Annotated[int, typer.Option(help="On-device fit of private factors.")] = 5,
) -> None:
    """Evaluate a run on the test split (full ranking and 99 sampled negatives)."""
    from fedrec.simulation.evaluate import evaluate_run

    setup_logging()
    console.print_json(json.dumps(evaluate_run(model_path, personalize_epochs=personalize_epochs)))


@app.command()
def serve(
    model_path: Annotated[Path, typer.Option(help="Run dir, checkpoint dir or output dir.")] = Path(
        "runs"
    ),
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the newest model over HTTP (FastAPI): /health, /v1/model, recommendations."""
    from fedrec.server.api.main import serve as run_server
    from fedrec.server.api.settings import Settings

    setup_logging()
    run_server(Settings(model_path=str(model_path), host=host, port=port))


@app.command()
def demo(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    port: Annotated[int, typer.Option(help="Port for the demo HTTP server.")] = 8765,
    model: Annotated[
        str,
        typer.Option(
            help="cooccurrence: the private co-occurrence model (user-level DP, SecAgg+ noise "
            "shares); mf: federated MF with record-level DP-SGD on Flower's simulation engine."
        ),
    ] = "cooccurrence",
) -> None:
    """The main job: train privately on ML-100K, checkpoint, serve, and query over HTTP."""
    from fedrec.cli.demo import DEMO_MODELS, run_demo

    if model not in DEMO_MODELS:
        raise typer.BadParameter(f"--model must be one of {', '.join(DEMO_MODELS)}")
    setup_logging()
    run_demo(overrides_from(config, scenario), port=port, console=console, model=model)


def _register_bench() -> None:
    from fedrec.cli.bench import bench_app

    app.add_typer(
        bench_app, name="bench", help="Measure quality and speed; write docs/benchmarks/."
    )


def _register_certs() -> None:
    from fedrec.cli.certs import certs_app

    app.add_typer(
        certs_app,
        name="certs",
        help="Make the CA, SuperLink TLS certificate and SuperNode keys a deployment needs.",
    )


def _register_node() -> None:
    from fedrec.cli.node import node_app

    app.add_typer(
        node_app,
        name="node",
        help="On an edge node: its state key, its own users' data, feedback, recommendations.",
    )


def _register_deploy() -> None:
    from fedrec.cli.deploy import deploy_app

    app.add_typer(
        deploy_app,
        name="deploy",
        help="On the SuperLink's side: submit a run and exit non-zero unless it completed.",
    )


_register_bench()
_register_certs()
_register_node()
_register_deploy()


def main() -> None:
    """Entry point: domain errors become one clear line and exit code 2, not a traceback."""
    try:
        app()
    except FedRecError as err:
        console.print(f"[bold red]error:[/] {err}")
        sys.exit(2)
