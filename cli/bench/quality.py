"""``fedrec bench quality``: centralized baselines against the federated models."""

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
    rerender,
)
from fedrec.cli.options import ConfigOpt, ScenarioOpt, overrides_from, setup_logging


def quality(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    runs_dir: RunsDirOpt = Path("runs/bench"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "quality",
    central_epochs: Annotated[
        int, typer.Option(min=1, help="Max epochs of the tuned centralized MF (early stopping).")
    ] = 40,
    models: Annotated[
        str,
        typer.Option(
            help="Federated models (comma-separated): MF (text-tower off), hybrid (heads)."
        ),
    ] = "MF,hybrid",
    baselines_only: Annotated[
        bool, typer.Option(help="Only the centralized baselines: no federated arms.")
    ] = False,
    dp_epsilons: Annotated[
        str, typer.Option(help="User-level epsilons of DP popularity (comma-separated).")
    ] = "1,4,8",
    dp_draws: Annotated[
        int, typer.Option(min=1, help="Fresh DP popularity releases per epsilon (mean shown).")
    ] = 3,
    render_only: RenderOnlyOpt = False,
) -> None:
    """Centralized baselines (tuned on validation) vs federated MF / hybrid with and without DP.

    Popularity, DP popularity, item-kNN, EASE, iALS and centralized MF/BPR; every NDCG@10
    also as a ratio to the best of the non-private baselines.
    """
    epsilons = floats(dp_epsilons)
    if any(not 0 < eps < float("inf") for eps in epsilons):
        raise typer.BadParameter(f"DP epsilons must be > 0 and finite, got {dp_epsilons!r}")
    from fedrec.simulations.bench import run_quality_benchmark

    setup_logging()
    if render_only:
        rerender(output_dir, name, "quality")
        console.print((output_dir / f"{name}.md").read_text())
        return
    result = run_quality_benchmark(
        overrides=overrides_from(config, scenario),
        output_dir=output_dir,
        runs_dir=runs_dir.resolve(),
        name=name,
        central_epochs=central_epochs,
        models=_models(models),
        baselines_only=baselines_only,
        dp_epsilons=epsilons,
        dp_draws=dp_draws,
    )
    console.print((output_dir / f"{name}.md").read_text())
    console.print(
        f"wrote {output_dir / (name + '.json')} ({len(result['baselines'])} baselines, "
        f"{len(result['dp_popularity'])} DP popularity releases, {len(result['arms'])} arms)"
    )


def _models(text: str) -> list[str]:
    from fedrec.simulations.bench import check_models

    chosen = [m.strip() for m in text.split(",") if m.strip()]
    try:
        check_models(chosen)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    return chosen
