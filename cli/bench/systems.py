"""``fedrec bench encoder``, ``federation``, ``serve`` and ``deployment``: what running costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedrec.cli.bench.common import (
    OutputDirOpt,
    RenderOnlyOpt,
    RunsDirOpt,
    console,
    ints,
    rerender,
    round_sizes,
)
from fedrec.cli.options import ConfigOpt, ScenarioOpt, overrides_from, setup_logging


def encoder(
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "encoder",
    requests: Annotated[int, typer.Option(min=10, help="Timed single requests.")] = 200,
    clients: Annotated[int, typer.Option(min=1, help="Clients timed per training arm.")] = 10,
    lora_clients: Annotated[
        int, typer.Option(min=1, help="Clients timed in the LoRA arms (slow on a CPU).")
    ] = 2,
    round_clients: Annotated[
        str,
        typer.Option(
            help="Clients in the end-to-end round, heads vs LoRA; a comma list times several "
            "round sizes (0: skip that table)."
        ),
    ] = "10",
    render_only: RenderOnlyOpt = False,
) -> None:
    """Encoder latency, local-step cost (MF vs heads vs LoRA, DP on/off), one round's cost."""
    setup_logging()
    if render_only:
        rerender(output_dir, name, "encoder")
        console.print((output_dir / f"{name}.md").read_text())
        return
    sizes = round_sizes(round_clients)  # a bad list fails before the slow imports
    from fedrec.simulations.bench_encoder import run_encoder_benchmark

    run_encoder_benchmark(
        output_dir=output_dir,
        device=device,
        name=name,
        requests=requests,
        clients=clients,
        lora_clients=lora_clients,
        round_clients=sizes,
    )
    console.print((output_dir / f"{name}.md").read_text())


def federation(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    clients: Annotated[
        str, typer.Option(help="Clients per round to measure (comma-separated).")
    ] = "10,100,943",
    items: Annotated[
        str, typer.Option(help="Synthetic catalogue sizes to measure (comma-separated).")
    ] = "1000,10000,100000",
    catalogue_clients: Annotated[
        int, typer.Option(help="Clients per round in the catalogue-size arms.")
    ] = 10,
    per_user: Annotated[
        bool,
        typer.Option(
            help="Also time Flower with one user per node (simulation-users-per-message=1)."
        ),
    ] = True,
    scale_clients: Annotated[
        str,
        typer.Option(help="Synthetic federations to time, in users (comma-separated; '' none)."),
    ] = "10,100,1000,10000",
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    runs_dir: RunsDirOpt = Path("runs/bench"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "federation",
    render_only: RenderOnlyOpt = False,
) -> None:
    """Flower overhead vs a plain loop; round time and memory vs clients and catalogue size."""
    from fedrec.simulations.bench_federation import run_federation_benchmark

    setup_logging()
    if render_only:
        rerender(output_dir, name, "federation")
        console.print((output_dir / f"{name}.md").read_text())
        return
    run_federation_benchmark(
        overrides=overrides_from(config, scenario),
        output_dir=output_dir,
        runs_dir=runs_dir.resolve(),
        clients_per_round=ints(clients),
        catalogue_sizes=ints(items),
        catalogue_clients=catalogue_clients,
        per_user=per_user,
        scale_clients=ints(scale_clients),
        name=name,
    )
    console.print((output_dir / f"{name}.md").read_text())


def serve(
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    runs_dir: RunsDirOpt = Path("runs/bench"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "serve",
    added: Annotated[
        int, typer.Option(min=0, help="Admin-added items in the start-up rows.")
    ] = 1000,
    requests: Annotated[
        int, typer.Option(min=10, help="Requests per latency/throughput row.")
    ] = 200,
    concurrency: Annotated[str, typer.Option(help="Concurrencies (comma-separated).")] = "1,4,8",
    model: Annotated[
        str,
        typer.Option(
            help="cooccurrence: the served default (trained once on ML-100K under RUNS_DIR); "
            "hybrid: a hybrid MF checkpoint with synthetic titles."
        ),
    ] = "cooccurrence",
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A run to measure instead of --model's (its journal is rewritten)."),
    ] = None,
    render_only: RenderOnlyOpt = False,
) -> None:
    """HTTP API on loopback: start-up to ready, cold-start latency, throughput by concurrency."""
    from fedrec.simulations.bench_serve import run_serve_benchmark

    setup_logging()
    if render_only:
        rerender(output_dir, name, "serve")
    else:
        run_serve_benchmark(
            output_dir=output_dir,
            runs_dir=runs_dir.resolve(),
            name=name,
            added=added,
            requests=requests,
            concurrency=ints(concurrency),
            model=model,
            checkpoint=checkpoint.resolve() if checkpoint is not None else None,
            progress=lambda message: console.print(f"[dim]{message}"),
        )
    console.print((output_dir / f"{name}.md").read_text())


def deployment(
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    runs_dir: RunsDirOpt = Path("runs/bench"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "deployment",
    arms: Annotated[
        str, typer.Option(help="Comma-separated: subprocess, process, secagg.")
    ] = "subprocess,process,secagg",
    nodes: Annotated[int, typer.Option(min=1, help="SuperNodes on 127.0.0.1.")] = 2,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of each run.")] = 3,
    render_only: RenderOnlyOpt = False,
) -> None:
    """A deployed round on loopback: its time, the clients' training, ClientApp start-up."""
    from fedrec.simulations.bench_deployment import run_deployment_benchmark

    setup_logging()
    if render_only:
        rerender(output_dir, name, "deployment")
    else:
        try:
            run_deployment_benchmark(
                output_dir=output_dir,
                runs_dir=runs_dir.resolve(),
                name=name,
                arms=[a.strip() for a in arms.split(",") if a.strip()],
                nodes=nodes,
                rounds=rounds,
                progress=lambda message: console.print(f"[dim]{message}"),
            )
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    console.print((output_dir / f"{name}.md").read_text())
