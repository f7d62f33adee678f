"""``fedrec bench privacy``, ``privacy-audit`` and ``attack``: what the guarantees cost and hold."""

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


def privacy(
    config: ConfigOpt = None,
    rounds: Annotated[int, typer.Option(min=1, help="Federated rounds per point.")] = 5,
    epsilons: Annotated[
        str, typer.Option(help="Target epsilons (comma-separated); infinity (no DP) always runs.")
    ] = "0.5,1,2,4,8",
    levels: Annotated[
        str,
        typer.Option(
            help="Which curves (comma-separated): record (DP-SGD), user (user-level, "
            "central noise), local and secagg (user-level, client-side noise)."
        ),
    ] = "record,user",
    user_clip: Annotated[
        float,
        typer.Option(min=0.0, help="User-level clip bound C (0: median update norm without DP)."),
    ] = 0.0,
    user_clip_scale: Annotated[
        float,
        typer.Option(help="Without --user-clip: C = this x the median update norm without DP."),
    ] = 1.0,
    scale: Annotated[
        str,
        typer.Option(
            help="User-level extrapolation: noise of a federation m times larger at epsilon 8 "
            "(comma-separated m; empty: none)."
        ),
    ] = "10",
    repeats: Annotated[
        int, typer.Option(min=1, help="Runs (fresh noise each) per DP point; the mean is shown.")
    ] = 1,
    goal_repeats: Annotated[
        int, typer.Option(min=0, help="Runs of the user-level point at epsilon 8 (the goal).")
    ] = 3,
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    runs_dir: RunsDirOpt = Path("runs/bench"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "privacy",
    note: Annotated[
        list[str] | None,
        typer.Option(help="A caveat printed in the report (how settings were chosen); repeatable."),
    ] = None,
    render_only: RenderOnlyOpt = False,
) -> None:
    """NDCG@10 vs epsilon: record-level DP-SGD and user-level DP (central), and no DP."""
    from fedrec.simulations.bench_privacy import run_privacy_benchmark

    setup_logging()
    if render_only:
        rerender(output_dir, name, "privacy")
    else:
        try:
            run_privacy_benchmark(
                output_dir=output_dir,
                runs_dir=runs_dir.resolve(),
                rounds=rounds,
                epsilons=floats(epsilons),
                levels=[x.strip() for x in levels.split(",") if x.strip()],
                user_clip=user_clip,
                user_clip_scale=user_clip_scale,
                scale=floats(scale),
                repeats=repeats,
                goal_repeats=goal_repeats,
                overrides=overrides_from(config, None),
                name=name,
                notes=note or [],
            )
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    console.print((output_dir / f"{name}.md").read_text())


def privacy_audit(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    record_canaries: Annotated[
        int, typer.Option(help="Record level: canary clients (one canary record each).")
    ] = 943,
    user_canaries: Annotated[
        int, typer.Option(help="User level: canary clients (one coordinate each).")
    ] = 10_000,
    sigma_scales: Annotated[
        str,
        typer.Option(
            help="Record level: audit at these multiples of dp-noise-multiplier (comma-separated;"
            " a larger σ brings the claim within what the canaries can certify)."
        ),
    ] = "1,3",
    background: Annotated[
        int, typer.Option(help="User level: real clients whose round-1 updates surround them.")
    ] = 200,
    placements: Annotated[
        str, typer.Option(help="User-level placements to audit (comma-separated; '' none).")
    ] = "central,secagg,local",
    controls: Annotated[
        bool, typer.Option(help="Also audit deliberately broken mechanisms (must be caught).")
    ] = True,
    cooccurrence: Annotated[
        str,
        typer.Option(help="Co-occurrence release: placements to audit (comma-separated; '' none)."),
    ] = "central,secagg",
    cooccurrence_epsilons: Annotated[
        str, typer.Option(help="Co-occurrence release: claimed ε to audit (comma-separated).")
    ] = "4,1",
    cooccurrence_canaries: Annotated[
        int, typer.Option(min=2, help="Co-occurrence release: canary users.")
    ] = 5000,
    cooccurrence_canary_size: Annotated[
        int,
        typer.Option(min=2, help="Co-occurrence release: items per canary (no pair in two)."),
    ] = 5,
    cooccurrence_items: Annotated[
        int,
        typer.Option(
            min=0,
            help="Co-occurrence release: keep the data set's N most-rated items (0: all; "
            "each client's vector has N(N+1)/2 entries).",
        ),
    ] = 500,
    only_cooccurrence: Annotated[
        bool,
        typer.Option(
            help="Run only the co-occurrence arm and put it into the existing NAME.json "
            "(its other rows stay as they were measured)."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the canaries (not of any DP noise).")] = 0,
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "privacy-audit",
    render_only: RenderOnlyOpt = False,
) -> None:
    """Empirical lower bounds on ε from canaries in one run, next to the accounted ε."""
    from fedrec.simulations.bench_audit import run_privacy_audit

    setup_logging()
    if render_only:
        rerender(output_dir, name, "privacy-audit")
    else:
        try:
            run_privacy_audit(
                overrides=overrides_from(config, scenario),
                output_dir=output_dir,
                name=name,
                record_canaries=record_canaries,
                user_canaries=user_canaries,
                background=background,
                placements=[p.strip() for p in placements.split(",") if p.strip()],
                controls=controls,
                seed=seed,
                sigma_scales=floats(sigma_scales),
                cooccurrence=[p.strip() for p in cooccurrence.split(",") if p.strip()],
                cooccurrence_epsilons=floats(cooccurrence_epsilons),
                cooccurrence_canaries=cooccurrence_canaries,
                cooccurrence_canary_size=cooccurrence_canary_size,
                cooccurrence_items=cooccurrence_items or None,
                only_cooccurrence=only_cooccurrence,
            )
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    console.print((output_dir / f"{name}.md").read_text())


def attack(
    config: ConfigOpt = None,
    scenario: ScenarioOpt = None,
    targets: Annotated[int, typer.Option(help="Target clients (users) to attack.")] = 100,
    rounds: Annotated[
        str, typer.Option(help="Rounds whose global model is attacked (comma-separated).")
    ] = "1,4",
    record_sigmas: Annotated[
        str,
        typer.Option(
            help="Record-level DP-SGD noise multipliers (comma-separated; the defaults reach "
            "about ε 8, 4 and 1 after 5 rounds of the DP scenario)."
        ),
    ] = "2.1,3.7,13",
    user_sigmas: Annotated[
        str, typer.Option(help="User-level DP noise multipliers σ (noise σC; comma-separated).")
    ] = "0.01,0.1,1",
    secagg: Annotated[
        str, typer.Option(help="Secure-aggregation cohort sizes K (comma-separated).")
    ] = "10,100",
    secagg_sigma: Annotated[
        float,
        typer.Option(help="σ of distributed user-level DP with the largest K (0: no such row)."),
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the targets, cohorts and noise.")] = 42,
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    runs_dir: RunsDirOpt = Path("runs/bench"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "attack",
    render_only: RenderOnlyOpt = False,
) -> None:
    """What an honest-but-curious server infers from one client's update, per defense."""
    from fedrec.simulations.attack import run_attack_benchmark

    setup_logging()
    if render_only:
        rerender(output_dir, name, "attack")
    else:
        run_attack_benchmark(
            overrides=overrides_from(config, scenario),
            output_dir=output_dir,
            runs_dir=runs_dir.resolve(),
            name=name,
            targets=targets,
            attack_rounds=ints(rounds),
            record_sigmas=floats(record_sigmas),
            user_sigmas=floats(user_sigmas),
            secagg_sizes=ints(secagg),
            distributed_sigma=secagg_sigma,
            seed=seed,
        )
    console.print((output_dir / f"{name}.md").read_text())
