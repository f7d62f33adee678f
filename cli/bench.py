"""``fedrec bench ...``: measure, then write JSON + Markdown under docs/benchmarks/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fedrec.cli.options import ConfigOpt, ScenarioOpt, overrides_from, setup_logging

bench_app = typer.Typer(no_args_is_help=True)
console = Console()


# Options every bench command shares.
OutputDirOpt = Annotated[Path, typer.Option(help="Where the JSON, table and plot go.")]
RunsDirOpt = Annotated[Path, typer.Option(help="Scratch space for the benchmark's runs.")]
RenderOnlyOpt = Annotated[
    bool, typer.Option(help="Only re-render the report from the existing JSON.")
]


def _rerender(output_dir: Path, name: str, kind: str) -> None:
    """The ``--render-only`` path of every bench command: re-render from the saved JSON."""
    from fedrec.simulations.report import render_only

    try:
        render_only(output_dir, name, kind=kind)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


@bench_app.command("quality")
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
    epsilons = _floats(dp_epsilons)
    if any(not 0 < eps < float("inf") for eps in epsilons):
        raise typer.BadParameter(f"DP epsilons must be > 0 and finite, got {dp_epsilons!r}")
    from fedrec.simulations.bench import run_quality_benchmark

    setup_logging()
    if render_only:
        _rerender(output_dir, name, "quality")
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


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _round_sizes(text: str) -> list[int]:
    sizes = _ints(text)
    if any(n < 0 for n in sizes):
        raise typer.BadParameter(f"round sizes must be >= 0, got {text!r}")
    return sizes


@bench_app.command("cold-start")
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
    from fedrec.simulations.bench_coldstart import check_repeats, run_coldstart_benchmark

    setup_logging()
    if liked:
        from fedrec.simulations.bench_liked import run_liked_bench

        name = f"{name}-liked"
        if render_only:
            _rerender(output_dir, name, "coldstart-liked")
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
            _rerender(output_dir, name, "coldstart-intents")
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
        _rerender(output_dir, name, "coldstart")
    else:
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


@bench_app.command("encoder")
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
        _rerender(output_dir, name, "encoder")
        console.print((output_dir / f"{name}.md").read_text())
        return
    from fedrec.simulations.bench_encoder import run_encoder_benchmark

    run_encoder_benchmark(
        output_dir=output_dir,
        device=device,
        name=name,
        requests=requests,
        clients=clients,
        lora_clients=lora_clients,
        round_clients=_round_sizes(round_clients),
    )
    console.print((output_dir / f"{name}.md").read_text())


@bench_app.command("privacy")
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
        _rerender(output_dir, name, "privacy")
    else:
        try:
            run_privacy_benchmark(
                output_dir=output_dir,
                runs_dir=runs_dir.resolve(),
                rounds=rounds,
                epsilons=_floats(epsilons),
                levels=[x.strip() for x in levels.split(",") if x.strip()],
                user_clip=user_clip,
                user_clip_scale=user_clip_scale,
                scale=_floats(scale),
                repeats=repeats,
                goal_repeats=goal_repeats,
                overrides=overrides_from(config, None),
                name=name,
                notes=note or [],
            )
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    console.print((output_dir / f"{name}.md").read_text())


@bench_app.command("federation")
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
    output_dir: OutputDirOpt = Path("docs/benchmarks"),
    runs_dir: RunsDirOpt = Path("runs/bench"),
    name: Annotated[str, typer.Option(help="File name stem of the report.")] = "federation",
    render_only: RenderOnlyOpt = False,
) -> None:
    """Flower overhead vs a plain loop; round time and memory vs clients and catalogue size."""
    from fedrec.simulations.bench_federation import run_federation_benchmark

    setup_logging()
    if render_only:
        _rerender(output_dir, name, "federation")
        console.print((output_dir / f"{name}.md").read_text())
        return
    run_federation_benchmark(
        overrides=overrides_from(config, scenario),
        output_dir=output_dir,
        runs_dir=runs_dir.resolve(),
        clients_per_round=_ints(clients),
        catalogue_sizes=_ints(items),
        catalogue_clients=catalogue_clients,
        per_user=per_user,
        name=name,
    )
    console.print((output_dir / f"{name}.md").read_text())


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}") from None


@bench_app.command("attack")
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
        _rerender(output_dir, name, "attack")
    else:
        run_attack_benchmark(
            overrides=overrides_from(config, scenario),
            output_dir=output_dir,
            runs_dir=runs_dir.resolve(),
            name=name,
            targets=targets,
            attack_rounds=_ints(rounds),
            record_sigmas=_floats(record_sigmas),
            user_sigmas=_floats(user_sigmas),
            secagg_sizes=_ints(secagg),
            distributed_sigma=secagg_sigma,
            seed=seed,
        )
    console.print((output_dir / f"{name}.md").read_text())


@bench_app.command("serve")
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
        _rerender(output_dir, name, "serve")
    else:
        run_serve_benchmark(
            output_dir=output_dir,
            runs_dir=runs_dir.resolve(),
            name=name,
            added=added,
            requests=requests,
            concurrency=_ints(concurrency),
            model=model,
            checkpoint=checkpoint.resolve() if checkpoint is not None else None,
            progress=lambda message: console.print(f"[dim]{message}"),
        )
    console.print((output_dir / f"{name}.md").read_text())


@bench_app.command("deployment")
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
        _rerender(output_dir, name, "deployment")
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


@bench_app.command("privacy-audit")
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
            help="Record level: audit at these multiples of noise-multiplier (comma-separated;"
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
        _rerender(output_dir, name, "privacy-audit")
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
                sigma_scales=_floats(sigma_scales),
                cooccurrence=[p.strip() for p in cooccurrence.split(",") if p.strip()],
                cooccurrence_epsilons=_floats(cooccurrence_epsilons),
                cooccurrence_canaries=cooccurrence_canaries,
                cooccurrence_canary_size=cooccurrence_canary_size,
                cooccurrence_items=cooccurrence_items or None,
                only_cooccurrence=only_cooccurrence,
            )
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    console.print((output_dir / f"{name}.md").read_text())


@bench_app.command("cooccurrence")
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
            _rerender(output_dir, name, "cooccurrence-scale")
        else:
            run_scale_bench(
                overrides=overrides_from(config, scenario),
                output_dir=output_dir,
                name=name,
                draws=draws,
                placement=placement,
            )
    elif render_only:
        _rerender(output_dir, name, "cooccurrence")
    else:
        run_cooccurrence_bench(
            overrides=overrides_from(config, scenario),
            output_dir=output_dir,
            name=name,
            epsilons=_floats(epsilons),
            draws=draws,
            placement=placement,
            baselines_path=baselines,
        )
    console.print((output_dir / f"{name}.md").read_text())
