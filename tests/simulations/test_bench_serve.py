"""The serving benchmark: what its report computes from the measurements, and a tiny real run."""

from pathlib import Path

import pytest

from fedrec.simulations.bench_serve import GOALS, run_serve_benchmark
from fedrec.simulations.reports.serve import serve_markdown


def _row(kind: str, c: int, rps: float) -> dict:
    return {"kind": kind, "concurrency": c, "rps": rps, "p50_ms": 5.0, "p99_ms": 9.0}


def _result(load: float) -> dict:
    lat = {"p50_ms": 4.0, "p99_ms": 8.0, "mean_ms": 5.0, "requests": 100}
    return {
        "created_at": "2026-01-01T00:00:00+00:00",
        "machine": {
            "cpus": 2,
            "platform": "linux",
            "python": "3.11",
            "load_avg_before": [load, 0.0, 0.0],
            "load_avg_after": [load, 0.0, 0.0],
        },
        "model": {"items": 1682, "embedding_dim": 32, "text_towers": True},
        "startup": [
            {"added_items": 0, "start": "first", "seconds": 3.0},
            {"added_items": 1000, "start": "first", "seconds": 12.0},
            {"added_items": 1000, "start": "restart", "seconds": 4.0},
        ],
        "latency": {"liked": lat, "text": {**lat, "p99_ms": 40.0}},
        "throughput": [_row("text", 1, 20.0), _row("text", 8, 36.0), _row("liked", 1, 50.0)],
        "goals": GOALS,
    }


def test_the_report_computes_speedups_and_judges_each_goal() -> None:
    text = serve_markdown(_result(load=0.1))
    assert "| text | 8 | 36.0 | 1.80x |" in text
    assert "| text throughput at concurrency 8 / 1 | >= 1.6 | 1.80 | yes |" in text
    assert "| text p99 at concurrency 1 (ms) | <= 30 | 40.00 | no |" in text
    assert "| liked-items p99 at concurrency 1 (ms) | <= 10 | 8.00 | yes |" in text
    assert "| start-up with the added items, restart (s) | <= 10 | 4.00 | yes |" in text
    assert "not idle" not in text
    assert "not idle" in serve_markdown(_result(load=2.5))


@pytest.mark.slow
def test_a_tiny_real_run_writes_both_files(tmp_path: Path) -> None:
    result = run_serve_benchmark(
        output_dir=tmp_path / "out",
        runs_dir=tmp_path / "runs",
        added=5,
        requests=10,
        concurrency=(1, 2),
    )
    assert {(r["kind"], r["concurrency"]) for r in result["throughput"]} == {
        ("liked", 1),
        ("liked", 2),
        ("text", 1),
        ("text", 2),
    }
    assert all(s["seconds"] > 0 for s in result["startup"])
    assert (tmp_path / "out" / "serve.md").read_text() == serve_markdown(result)
