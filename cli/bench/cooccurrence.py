"""``fedrec bench cooccurrence`` (and its --scale): the private co-occurrence model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedrec.cli.bench.common import (
    OutputDirOpt,
    RenderOnlyOpt,
    console,
    floats,
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
) -> None:
    """The private co-occurrence model vs popularity, DP popularity, the best baseline."""
    from fedrec.simulations.bench_cooccurrence import run_cooccurrence_bench, run_scale_bench

    setup_logging()
    if placement not in ("secagg", "central", "local"):
        raise typer.BadParameter(f"placement must be secagg, central or local, got {placement!r}")
    if scale:
        name = f"{name}-scale"
        if render_only:
            rerender(output_dir, name, "cooccurrence-scale")
        else:
            run_scale_bench(
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
