"""``fedrec bench ...``: measure, then write JSON + Markdown under docs/benchmarks/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fedrec.cli.options import ConfigOpt, ScenarioOpt, overrides_from, setup_logging

bench_app = typer.Typer(no_args_is_help=True)
console = Console()


@bench_app.command("quality")
def quality(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    output_dir: Annotated[Path, typer.Option(help="Where the JSON and table go.")] = Path(
        "docs/benchmarks"
    ),
    runs_dir: Annotated[Path, typer.Option(help="Where the benchmark's runs go.")] = Path(
        "runs/bench"
    ),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "quality",
    central_epochs: Annotated[
        int, typer.Option(help="Max epochs of the centralized reference.")
    ] = 40,
) -> None:
    """Popularity vs centralized MF vs federated MF without/with DP, both protocols."""
    from fedrec.simulations.bench import run_quality_benchmark

    setup_logging()
    result = run_quality_benchmark(
        overrides=overrides_from(config, scenario),
        output_dir=output_dir,
        runs_dir=runs_dir.resolve(),
        name=name,
        central_epochs=central_epochs,
    )
    console.print((output_dir / f"{name}.md").read_text())
    console.print(f"wrote {output_dir / (name + '.json')} ({len(result['arms'])} arms)")
