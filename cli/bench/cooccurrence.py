"""``fedrec bench cooccurrence`` (and its --scale): the private co-occurrence model.

``fedrec bench secagg``: what its release costs over Flower's SecAgg+.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedrec.cli.bench.common import (
    OutputDirOpt,
    RenderOnlyOpt,
    RunsDirOpt,
    console,
    floats,
    ints,
    rerender,
)
from fedrec.cli.options import ConfigOpt, ScenarioOpt, overrides_from, setup_logging


def cooccurrence(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    epsilons: Annotated[
        str, typer.Option(help="User-level ε of the releases (comma-separated).")
    ] = "1,2,4,8",
    draws: Annotated[int, typer.Option(help="Fresh releases per ε (>= 3 for the goal).")] = 3,
    placement: Annotated[
        str, typer.Option(help="Where the noise goes: secagg, central or local.")
    ] = "secagg",
    baselines: Annotated[
        Path | None,
        typer.Option(help="The centralized baselines' JSON (default: OUTPUT_DIR/baselines.json)."),
    ] = None,
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "cooccurrence",
    render_only: RenderOnlyOpt = False,
    scale: Annotated[
        bool,
        typer.Option(
            help="Instead: utility at ε 1 and 4 for federations 1-100x larger (a stated model), "
            "written to NAME-scale.*"
        ),
    ] = False,
    tune: Annotated[
        bool,
        typer.Option(
            help="Instead: choose rank, content weight and fade on held-out items, never a "
            "test item, at ε 4 (--draws fresh draws each), written to NAME-tuning.*"
        ),
    ] = False,
) -> None:
    """The private co-occurrence model vs popularity, DP popularity, the best baseline."""
    from fedrec.simulations.bench_cooccurrence import run_cooccurrence_bench, run_scale_bench

    setup_logging()
    if placement not in ("secagg", "central", "local"):
        raise typer.BadParameter(f"placement must be secagg, central or local, got {placement!r}")
    if scale and tune:
        raise typer.BadParameter("--scale and --tune are two different reports: pick one")
    if tune or scale:
        from fedrec.simulations.bench_cooccurrence_tuning import run_tuning_bench

        # Two reports of their own, run and re-rendered alike: NAME-tuning.*, NAME-scale.*
        suffix = "tuning" if tune else "scale"
        name = f"{name}-{suffix}"
        if render_only:
            rerender(output_dir, name, f"cooccurrence-{suffix}")
        else:
            run = run_tuning_bench if tune else run_scale_bench
            run(
                overrides=overrides_from(config, scenario),
                output_dir=output_dir,
                name=name,
                draws=draws,
                placement=placement,
            )
    elif render_only:
        rerender(output_dir, name, "cooccurrence")
    else:
        run_cooccurrence_bench(
            overrides=overrides_from(config, scenario),
            output_dir=output_dir,
            name=name,
            epsilons=floats(epsilons),
            draws=draws,
            placement=placement,
            baselines_path=baselines,
        )
    console.print((output_dir / f"{name}.md").read_text())


def secagg(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    clients: Annotated[
        str, typer.Option(help="Federation sizes to run, in clients (comma-separated).")
    ] = "50,100,200,400,943",
    shares: Annotated[
        float,
        typer.Option(help="secagg-num-shares of every arm (a count above 1, or a fraction)."),
    ] = 7.0,
    slices: Annotated[
        int, typer.Option(min=2, help="Slices measured per arm (the first warms up).")
    ] = 2,
    full_up_to: Annotated[
        int, typer.Option(help="Arms of at most this many clients measure every slice.")
    ] = 50,
    share_sweep: Annotated[
        str,
        typer.Option(help="Other secagg-num-shares to time at --sweep-clients ('' none)."),
    ] = "",
    sweep_clients: Annotated[int, typer.Option(min=2, help="Clients of the share sweep.")] = 100,
    profile_clients: Annotated[
        int, typer.Option(min=0, help="Clients of the in-process profile of a slice (0: none).")
    ] = 100,
    windows: Annotated[
        str,
        typer.Option(help="Other max-in-flight to time at the largest federation ('' none)."),
    ] = "16",
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    runs_dir: RunsDirOpt = Path("runs/bench"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "secagg",
    render_only: RenderOnlyOpt = False,
) -> None:
    """The co-occurrence release over Flower's SecAgg+: seconds per slice and stage, bytes."""
    from fedrec.simulations.bench_secagg import run_secagg_bench

    setup_logging()
    if render_only:
        rerender(output_dir, name, "secagg")
    else:
        run_secagg_bench(
            overrides=overrides_from(config, scenario),
            output_dir=output_dir,
            runs_dir=runs_dir.resolve(),
            clients=ints(clients),
            shares=shares,
            slices=slices,
            full_up_to=full_up_to,
            share_sweep=floats(share_sweep),
            sweep_clients=sweep_clients,
            profile_clients=profile_clients,
            windows=ints(windows),
            name=name,
        )
    console.print((output_dir / f"{name}.md").read_text())
