"""``fedrec bench cold-start``: new users and new items (and its --liked / --intents)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedrec.cli.bench.common import (
    OutputDirOpt,
    RenderOnlyOpt,
    RunsDirOpt,
    console,
    rerender,
)
from fedrec.cli.options import ConfigOpt, overrides_from, setup_logging


def cold_start(
    config: ConfigOpt = None,
    rounds: Annotated[int, typer.Option(min=1, help="Federated rounds per model.")] = 8,
    fraction: Annotated[
        float, typer.Option(min=0.01, max=0.5, help="Share of users and of items held out.")
    ] = 0.1,
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    runs_dir: RunsDirOpt = Path("runs/bench"),
    work_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of an earlier run's models (its clients-mf/ and clients-hybrid/ "
            "hold global.npz): they are reused instead of trained again."
        ),
    ] = None,
    name: Annotated[
        str, typer.Option(help="File name stem of the report (e.g. coldstart-dp for a DP run).")
    ] = "coldstart",
    repeats: Annotated[
        int,
        typer.Option(
            min=1,
            help="Train both models this many times and report each run and the mean: "
            "with fresh DP noise on the same split under DP, with the next seeds without.",
        ),
    ] = 1,
    render_only: RenderOnlyOpt = False,
    intents: Annotated[
        bool,
        typer.Option(
            help="Instead: free-text intents against the served default model "
            "(shared/evaluation/intents.toml), written to NAME-intents.*"
        ),
    ] = False,
    run: Annotated[
        Path | None,
        typer.Option(help="--intents: a co-occurrence run to read instead of training one."),
    ] = None,
    liked: Annotated[
        bool,
        typer.Option(
            help="Instead: new users from 1/3/5 liked items against the served default "
            "(private and exact co-occurrence releases without held-out users), written to "
            "NAME-liked.*"
        ),
    ] = False,
) -> None:
    """New users (1/3/5 liked items, or text) and new items (text) vs baselines; warm users.

    Trains without DP by default; `-c dp-enabled=true -c client-optimizer=sgd -c
    learning-rate=0.1` trains both models under the product's record-level DP-SGD.
    """
    from fedrec.simulations.coldstart_settings import check_repeats

    setup_logging()
    if liked:
        from fedrec.simulations.bench_liked import run_liked_bench

        name = f"{name}-liked"
        if render_only:
            rerender(output_dir, name, "coldstart-liked")
        else:
            run_liked_bench(
                overrides=overrides_from(config, None),
                output_dir=output_dir,
                runs_dir=runs_dir.resolve() / "coldstart-liked",
                name=name,
            )
        console.print((output_dir / f"{name}.md").read_text())
        return
    if intents:
        from fedrec.simulations.bench_intents import run_intents_bench

        name = f"{name}-intents"
        if render_only:
            rerender(output_dir, name, "coldstart-intents")
        else:
            run_intents_bench(
                overrides=overrides_from(config, None),
                output_dir=output_dir,
                name=name,
                run_dir=run,
            )
        console.print((output_dir / f"{name}.md").read_text())
        return
    try:
        check_repeats(overrides_from(config, None), repeats)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    if render_only:
        rerender(output_dir, name, "coldstart")
    else:
        from fedrec.simulations.bench_coldstart import run_coldstart_benchmark

        run_coldstart_benchmark(
            output_dir=output_dir,
            runs_dir=runs_dir.resolve(),
            rounds=rounds,
            fraction=fraction,
            overrides=overrides_from(config, None),
            work_dir=work_dir.resolve() if work_dir else None,
            name=name,
            repeats=repeats,
        )
    console.print((output_dir / f"{name}.md").read_text())
