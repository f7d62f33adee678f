"""``fedrec deploy ...``: what the operator of a SuperLink runs to start a run and watch it.

The walkthrough: docs/deployment.md, "Running".
"""

from __future__ import annotations

from typing import Annotated

import typer

deploy_app = typer.Typer(no_args_is_help=True)


@deploy_app.command("run")
def run(
    superlink: Annotated[str, typer.Argument(help="The connection in Flower's config.toml.")],
    app: Annotated[str, typer.Option(help="The Flower app (a folder or FAB).")] = ".",
    run_config: Annotated[
        str | None, typer.Option("--run-config", help="As `flwr run --run-config`.")
    ] = None,
    stream: Annotated[bool, typer.Option(help="Stream the run's logs while it runs.")] = True,
    timeout: Annotated[
        float, typer.Option(help="Give up waiting after this many seconds (0: wait).")
    ] = 0.0,
) -> None:
    """Submit a run with `flwr run`, follow it, and exit 1 unless it completed.

    `flwr run` itself exits 0 once the run is accepted, even if the run then fails.
    """
    from fedrec.shared.deploy.runs import follow, submit

    run_id = submit(app, superlink, run_config=run_config)
    typer.echo(f"run {run_id} submitted to {superlink}")
    outcome = follow(run_id, superlink, stream=stream, timeout=timeout or None)
    details = f" ({outcome.details})" if outcome.details else ""
    typer.echo(f"run {run_id}: {outcome.status}{details}")
    raise typer.Exit(0 if outcome.ok else 1)
