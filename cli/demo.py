"""``fedrec demo``: train privately, checkpoint, serve, and ask the HTTP API for answers.

The default model is the private co-occurrence model (user-level DP, SecAgg+ noise shares:
the best private configuration, docs/benchmarks/cooccurrence.md); ``--model mf`` runs the
federated MF with record-level DP-SGD on Flower's simulation engine instead.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from fedrec.server.api.main import create_app
from fedrec.server.api.settings import Settings
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.simulation.runner import simulate

# Star Wars (1977), The Empire Strikes Back (1980), Return of the Jedi (1983) in ML-100K ids.
DEMO_LIKED = ["50", "172", "181"]
# Toy Story (1995), Aladdin (1992), The Lion King (1994).
DEMO_LIKED_KIDS = ["1", "95", "71"]
# A new user who describes their taste in words (no item ids): the text towers place them.
DEMO_TEXT = "funny animated films for the whole family"
DEMO_MODELS = ("cooccurrence", "mf")


class _BackgroundServer:
    """uvicorn in a thread, stopped on exit: the demo's HTTP calls are real HTTP calls."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            ws="none",  # no websockets here; skips importing a deprecated backend
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _print_quality(run_dir: Path, cfg: FedRecConfig, console: Console) -> None:
    """Test-split quality of the trained model next to popularity's, on the same split.

    Measured by the simulation from the client states on this machine's disk (a deployment
    has no such view; under DP clients send no evaluation metrics).
    """
    from fedrec.shared.baselines import popularity_score_fn
    from fedrec.shared.data import load_split
    from fedrec.shared.evaluation import evaluate_model
    from fedrec.simulation.evaluate import evaluate_run

    ours = evaluate_run(run_dir, personalize_epochs=cfg.federation.personalize_epochs)["metrics"]
    _, split = load_split(cfg.data)
    popular = evaluate_model(popularity_score_fn(split), split, k=10, seed=cfg.data.seed)
    key = "ndcg@10_full"
    console.print(
        f"test split, full ranking (simulation's own evaluation of the client states): "
        f"NDCG@10 {ours[key]:.4f}, HR@10 {ours['hr@10_full']:.4f}; popularity NDCG@10 "
        f"{popular[key]:.4f} ({ours[key] / popular[key]:.2f}x)"
    )


def _train_cooccurrence(overrides: dict[str, Any], console: Console) -> tuple[Path, FedRecConfig]:
    """The private co-occurrence model, its guarantee, its quality next to popularity's."""
    from rich.progress import Progress

    from fedrec.shared.baselines import DPPopularity, popularity_score_fn
    from fedrec.shared.data import load_split
    from fedrec.shared.evaluation import evaluate_model
    from fedrec.simulation.cooccurrence import DEPLOYABLE_SECAGG, train_cooccurrence

    overrides = {
        "user-dp": "secagg",
        "run-name": "cooccurrence",
        **DEPLOYABLE_SECAGG,
        **overrides,
    }
    cfg = resolve_config({}, overrides)
    run_dir = Path(cfg.output.output_dir) / cfg.output.run_name
    if (run_dir / "LATEST").exists():
        # A second release of the same users would spend their budget again: serve this one.
        console.rule(f"[bold]1. {run_dir} already holds a private release: serving it")
        _print_quality(run_dir, cfg, console)
        return run_dir, cfg
    console.rule(
        "[bold]1. private training: every user releases its co-occurrence once "
        f"(user-level DP, noise placement {cfg.privacy.user_dp})"
    )
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("clients adding their noise shares", total=None)
        run = train_cooccurrence(
            overrides, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    _, split = load_split(cfg.data)
    key = "ndcg@10_full"
    popular = evaluate_model(popularity_score_fn(split), split, k=10, seed=cfg.data.seed)[key]
    ours = run.test[key]
    line = (
        f"test split, full ranking (each user ranks on its device; pooled here): NDCG@10 "
        f"{ours:.4f}, HR@10 {run.test['hr@10_full']:.4f}; popularity NDCG@10 {popular:.4f} "
        f"({ours / popular:.2f}x)"
    )
    if run.plan.epsilon is not None:
        dp_pop = DPPopularity(epsilon=run.plan.epsilon).fit(split)
        dp_ndcg = evaluate_model(dp_pop.score, split, k=10, seed=cfg.data.seed)[key]
        line += f"; DP popularity at the same ε {dp_ndcg:.4f}"
    console.print(line)
    console.print(
        f"each client sent {run.bytes_per_client / 1e6:.1f} MB once; {run.seconds:.0f} s for "
        f"{split.n_users} clients; the item model a device ranks with is "
        f"{run.item_model_bytes / 1e6:.1f} MB"
    )
    return run.run_dir, cfg


def _print_liked(http: httpx.Client, liked: list[str], console: Console) -> None:
    """Ask for a new user who liked ``liked``; print the answer as a table."""
    body = {"liked_item_ids": liked, "k": 10}
    resp = http.post("/v1/recommendations/cold-start", json=body).raise_for_status().json()
    title_of = {i: http.get(f"/v1/items/{i}").json().get("title", i) for i in liked}
    titles = list(title_of.values())
    table = Table(title=f"POST /v1/recommendations/cold-start  (liked: {'; '.join(titles)})")
    for col in ("#", "item", "title", "genres", "score", "because you liked"):
        table.add_column(col)
    for rank, item in enumerate(resp["items"], 1):
        table.add_row(
            str(rank),
            item["id"],
            item["title"],
            ", ".join(item.get("genres", [])),
            f"{item['score']:.3f}",
            title_of.get(item.get("because") or "", ""),
        )
    console.print(table)


def run_demo(
    overrides: dict[str, Any], *, port: int, console: Console, model: str = "cooccurrence"
) -> None:
    """Train on the configured data (ML-100K by default), then serve and query."""
    # One JSON line per request would bury the answers the demo prints.
    logging.getLogger("fedrec.access").setLevel(logging.WARNING)
    if model not in DEMO_MODELS:
        raise ValueError(f"model must be one of {DEMO_MODELS}, got {model!r}")
    if model == "cooccurrence":
        run_dir, cfg = _train_cooccurrence(overrides, console)
    else:
        cfg = resolve_config({}, overrides)
        console.rule("[bold]1. federated training (Flower simulation, Opacus DP-SGD)")
        run_dir = simulate(overrides)
        _print_quality(run_dir, cfg, console)
    console.rule("[bold]2. serving the newest checkpoint over HTTP")
    # The demo queries at once, so the server starts only once the model is loaded.
    settings = Settings(
        model_path=str(Path(run_dir)), host="127.0.0.1", port=port, load_in_background=False
    )
    base = f"http://{settings.host}:{settings.port}"
    with _BackgroundServer(settings), httpx.Client(base_url=base, timeout=30) as http:
        info = http.get("/v1/model").raise_for_status().json()
        console.print(
            f"GET {base}/v1/model -> version {info['model_version']}, round {info['round']}"
        )
        guarantees = [g for g in (info.get("privacy"), info.get("user_privacy")) if g]
        for privacy in guarantees:
            console.print(
                f"  privacy: ({privacy['epsilon']:.2f}, {privacy['delta']:.3g})-DP "
                f"per {privacy['unit']} ({privacy['mechanism']}); covers {privacy['covers']}"
            )
        if not guarantees:
            console.print("  privacy: none (no DP setting was on)")
        profiles = [DEMO_LIKED, DEMO_LIKED_KIDS]
        if not (cfg.data.dataset == "ml-100k" and not cfg.data.data_path):
            profiles = [[str(http.get("/v1/items", params={"limit": 1}).json()["items"][0]["id"])]]
        for liked in profiles:
            _print_liked(http, liked, console)
        if cfg.text.text_tower != "off":
            body = {"text": DEMO_TEXT, "k": 5}
            resp = http.post("/v1/recommendations/cold-start", json=body).raise_for_status()
            table = Table(title=f'POST /v1/recommendations/cold-start  (text: "{DEMO_TEXT}")')
            for col in ("#", "item", "title", "score", "because"):
                table.add_column(col)
            for rank, item in enumerate(resp.json()["items"], 1):
                table.add_row(
                    str(rank), item["id"], item["title"], f"{item['score']:.3f}", item["because"]
                )
            console.print(table)
    console.print(
        f"model and checkpoints: {run_dir}   serve it: fedrec serve --model-path {run_dir}"
    )
