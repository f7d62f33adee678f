"""The deployment benchmark's report: every number in it comes from the result dict."""

from pathlib import Path

import pytest

from fedrec.simulations.bench_deployment import run_deployment_benchmark, write_report
from fedrec.simulations.reports.deployment import deployment_markdown

GOLDEN = Path(__file__).parent / "golden" / "deployment.md"


def _rounds(seconds: list[float], client: float | None) -> list[dict]:
    return [
        {"round": i + 1, "seconds": s, "client_seconds": client, "clients_ok": 2}
        for i, s in enumerate(seconds)
    ]


def _result() -> dict:
    return {
        "created_at": "2026-01-01 00:00 UTC",
        "machine": {
            "cpus": 2,
            "platform": "linux",
            "python": "3.11.0",
            "load_avg_before": [3.0, 2.0, 1.0],
            "load_avg_after": [3.5, 2.5, 1.5],
        },
        "flwr_version": "1.42.0",
        "settings": {
            "nodes": 2,
            "rounds": 3,
            "users": 4,
            "items": 20,
            "interactions_per_user": 10,
            "repeats": 3,
        },
        "clientapp_start": {"samples_s": [6.0, 7.0, 8.0], "median_s": 7.0},
        "arms": [
            {"isolation": "subprocess", "run_wall_s": 60.0, "rounds": _rounds([10, 12, 11], 0.5)},
            {"isolation": "process", "run_wall_s": 60.0, "rounds": _rounds([11, 12, 12], 0.5)},
            {"isolation": "secagg", "run_wall_s": 90.0, "rounds": _rounds([40, 44, 42], None)},
        ],
    }


def test_the_report_splits_each_round_and_compares_the_isolation_modes() -> None:
    text = deployment_markdown(_result())
    assert "| `--isolation subprocess` (default) | 1 | 11.0 | 0.50 | 10.5 |" in text
    assert "| `--isolation process` + `flower-superexec` | 1 | 12.0 | 0.50 | 11.5 |" in text
    assert "| `--isolation subprocess`, `user-dp = secagg` | 4 | 42.0 |  |  |" in text
    assert "took 7.0 s (median of 6.0, 7.0, 8.0 s)" in text
    assert "the two modes cost the same (12.0 s against 11.0 s a round)" in text
    assert "the machine was busy: upper bounds" in text


def test_deployment_report_matches_its_golden_file(tmp_path: Path) -> None:
    write_report(_result(), tmp_path, "deployment")
    assert (tmp_path / "deployment.md").read_text() == GOLDEN.read_text()


def test_unknown_arms_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown arms"):
        run_deployment_benchmark(output_dir=tmp_path, runs_dir=tmp_path, arms=["threads"])
