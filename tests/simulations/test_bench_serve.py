"""The serving benchmark: what its report computes from the measurements, and a tiny real run."""

from pathlib import Path

import pytest

from fedrec.simulations.bench_serve import GOALS, run_serve_benchmark, unique_text
from fedrec.simulations.reports.serve import STAGE_LABELS, serve_markdown


def _row(kind: str, c: int, rps: float) -> dict:
    return {
        "kind": kind,
        "concurrency": c,
        "rps": rps,
        "p50_ms": 5.0,
        "p99_ms": 9.0,
        "requests": 200,
    }


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
    assert "| text p99 at concurrency 1, new texts (ms) | <= 30 | 40.00 | no |" in text
    assert "| liked-items p99 at concurrency 1 (ms) | <= 10 | 8.00 | yes |" in text
    assert "| start-up with the added items, restart (s) | <= 10 | 4.00 | yes |" in text
    assert "not idle" not in text
    assert "not idle" in serve_markdown(_result(load=2.5))


def test_the_report_names_the_served_model_and_shows_the_profile_and_threads() -> None:
    result = _result(load=0.1)
    result["model"] = {
        "kind": "cooccurrence",
        "items": 1682,
        "embedding_dim": 2066,
        "text_towers": True,
        "user_dp": "off",
        "item_model": "ease",
        "dataset": "ml-100k",
        "data_path": "",
    }
    result["settings"] = [
        {"compute_threads": 0, "encoder_passes": 1, **_row("text", 1, 4.0), "requests": 48},
        {"compute_threads": 1, "encoder_passes": 2, **_row("text", 8, 30.0), "requests": 48},
    ]
    stages = {"encode": 30.0, "encode.forward": 27.0, "scores": 5.0, "other": 5.0}
    result["profile"] = {
        "text": {
            "requests": 40,
            "mean_ms": 36.0,
            "profiled_requests": 40,
            "profiled_mean_ms": 40.0,
            "stages_ms": stages,
        }
    }
    text = serve_markdown(result)
    assert "the served default, a co-occurrence checkpoint" in text
    assert "user-dp off, item model ease" in text and "2066-wide" in text
    assert "| 1 | 1 | 1 | 20.0 | 5.00 | 9.00 | 200 |" in text  # the defaults, from the main rows
    assert "| 0 | 1 | 1 | 4.0 | 5.00 | 9.00 | 48 |" in text
    assert "| 1 | 2 | 8 | 30.0 | 5.00 | 9.00 | 48 |" in text
    assert "text: 36.00 ms a request over 40" in text
    assert f"| {STAGE_LABELS['encode']} | 30.00 | 75% |" in text
    assert f"| {STAGE_LABELS['encode.forward']} | 27.00 | 68% |" in text
    assert "| profiled request | 40.00 | 100% |" in text


def test_distinct_texts_are_distinct() -> None:
    texts = [unique_text(i) for i in range(50_000)]
    assert len(set(texts)) == len(texts)


@pytest.mark.slow
def test_a_tiny_real_run_writes_both_files(tmp_path: Path) -> None:
    result = run_serve_benchmark(
        output_dir=tmp_path / "out",
        runs_dir=tmp_path / "runs",
        added=5,
        requests=10,
        concurrency=(1, 2),
        model="hybrid",  # the co-occurrence default trains on ML-100K first
        compare_requests=4,
        profile_requests_n=2,
    )
    assert set(result["profile"]) == {"liked", "text"}
    changed = {
        (r["compute_threads"], r["encoder_passes"], r["concurrency"]) for r in result["settings"]
    }
    assert changed == {(0, 1, 1), (0, 1, 2), (1, 2, 1), (1, 2, 2)}
    assert {(r["kind"], r["concurrency"]) for r in result["throughput"]} == {
        ("liked", 1),
        ("liked", 2),
        ("text", 1),
        ("text", 2),
    }
    assert all(s["seconds"] > 0 for s in result["startup"])
    assert (tmp_path / "out" / "serve.md").read_text() == serve_markdown(result)
