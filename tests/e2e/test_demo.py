"""``fedrec demo`` end to end on a tiny data set: train, measure, serve, ask over HTTP."""

import socket
from pathlib import Path

import pytest
from rich.console import Console

from fedrec.cli.demo import run_demo
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.simulation.cooccurrence import DEPLOYABLE_SECAGG
from tests.e2e.helpers import write_tiny_ratings

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_default_demo_trains_privately_and_serves(tmp_path: Path) -> None:
    data = write_tiny_ratings(tmp_path / "ratings.csv", n_users=30, n_items=30, per_user=8)
    console = Console(record=True, width=200)
    overrides = {
        "dataset": "generic",
        "data-path": str(data),
        "text-tower": "off",
        "cooccurrence-rank": 8,
        "output-dir": str(tmp_path / "runs"),
        "run-name": "demo",
    }
    run_demo(overrides, port=_port(), console=console)
    out = console.export_text()
    assert "popularity NDCG@10" in out and "DP popularity" in out  # next to the baselines
    assert "-DP per user" in out and "secagg" in out  # the guarantee, its unit, its placement
    assert "POST /v1/recommendations/cold-start" in out
    # Released as it would over Flower: a ring of shares, noise sized for the survivor floor.
    ckpt = load_checkpoint(tmp_path / "runs" / "demo")
    assert (
        ckpt.manifest["config"]["secagg-min-survivors"] == DEPLOYABLE_SECAGG["secagg-min-survivors"]
    )
    assert ckpt.manifest["history"][0]["release"]["survivors"] == 27  # ceil(0.9 x 30 clients)
    # Run again: the release is served, not repeated (that would spend the budget twice).
    again = Console(record=True, width=200)
    run_demo(overrides, port=_port(), console=again)
    assert "already holds a private release" in again.export_text()


def test_demo_trains_reports_quality_against_popularity_and_serves(tmp_path: Path) -> None:
    data = write_tiny_ratings(tmp_path / "ratings.csv", n_users=8, n_items=30, per_user=8)
    console = Console(record=True, width=200)
    overrides = {
        "dataset": "generic",
        "data-path": str(data),
        "num-rounds": 1,
        "embedding-dim": 8,
        "text-tower": "off",
        "output-dir": str(tmp_path / "runs"),
        "run-name": "demo",
    }
    run_demo(overrides, port=_port(), console=console, model="mf")
    out = console.export_text()
    assert "NDCG@10" in out and "popularity NDCG@10" in out  # measured, next to popularity
    assert "-DP per record" in out  # the guarantee, with its unit
    assert "POST /v1/recommendations/cold-start" in out
