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
        float, typer.Option(help="Give up waiting for a run after this many seconds (0: wait).")
    ] = 0.0,
    resubmit: Annotated[
        int,
        typer.Option(
            min=0, help="Submit again, this many times at most, a run whose ServerApp was lost."
        ),
    ] = 3,
) -> None:
    """Submit a run with `flwr run`, follow it, and exit 1 unless it completed.

    `flwr run` itself exits 0 once the run is accepted, even if the run then fails. A run
    whose ServerApp died with the SuperLink (Flower marks it failed when its heartbeats
    stop) is submitted again with the same settings: its ServerApp resumes from the last
    checkpoint (resume = true, the default).
    """
    from fedrec.shared.deploy.runs import follow, submit

    for attempt in range(resubmit + 1):
        run_id = submit(app, superlink, run_config=run_config)
        typer.echo(f"run {run_id} submitted to {superlink}")
        outcome = follow(run_id, superlink, stream=stream, timeout=timeout or None)
        details = f" ({outcome.details})" if outcome.details else ""
        typer.echo(f"run {run_id}: {outcome.status}{details}")
        if not outcome.lost:
            break
        if attempt < resubmit:
            typer.echo(f"run {run_id} lost its ServerApp; submitting it again to resume it")
    raise typer.Exit(0 if outcome.ok else 1)
