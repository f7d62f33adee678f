"""The quality benchmark: the baselines' result dict, the ratios, and the rendered report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedrec.shared.data.dataset import Interactions, Split
from fedrec.simulations.bench import run_quality_benchmark
from fedrec.simulations.bench_baselines import add_ratios, reference_of, run_baselines
from fedrec.simulations.report import render
from fedrec.simulations.reports.quality import markdown_table, plot_curves

GOLDEN = Path(__file__).parent / "golden" / "quality.md"

TINY_GRIDS = {
    "item-knn": {"neighbours": (2, 4), "shrinkage": (0.0,)},
    "ease": {"l2": (1.0, 10.0)},
    "ials": {"factors": (4,), "regularization": (0.1,), "alpha": (1.0,), "iterations": (5,)},
    "mf": {"dim": (4,), "learning_rate": (0.05,), "weight_decay": (0.0,)},
}


def _metrics(ndcg: float, **extra: float) -> dict[str, float]:
    return {
        "hr@10_full": 2 * ndcg,
        "ndcg@10_full": ndcg,
        "mrr@10_full": ndcg / 2,
        "hr@10_sampled": 0.5,
        "ndcg@10_sampled": 0.3,
        "coverage@10": 0.2,
        "n_users": 943.0,
        "mean_pop_rank@10": 120.0,
        "ild_genres@10": 0.75,
        **extra,
    }


def _tuning(grid: dict[str, list[Any]], chosen: dict[str, Any], **fitted: int) -> dict[str, Any]:
    trials = [{"params": chosen, "valid": _metrics(0.09), "fitted": fitted, "seconds": 1.0}]
    return {
        "grid": grid,
        "metric": "valid/ndcg@10_full",
        "chosen": chosen,
        "fitted": fitted,
        "trials": trials,
    }


def _quality_result() -> dict[str, Any]:
    def entry(ndcg: float, tuning: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"metrics": _metrics(ndcg), "tuning": tuning, "wall_s": 2.0, "peak_rss_mib": 500.0}

    settings = {
        "num-rounds": 3,
        "strategy": "fedavg",
        "fraction-train": 1.0,
        "local-epochs": 2,
        "client-optimizer": "adam",
        "learning-rate": 0.01,
        "server-learning-rate": 100.0,
        "embedding-dim": 32,
        "personalize-epochs": 5,
        "dp-enabled": False,
        "text-tower": "off",
    }
    curve = [
        {"round": 1.0, "elapsed_s": 60.0, "ndcg@10_full": 0.03, "eval_users": 943.0},
        {"round": 2.0, "elapsed_s": 120.0, "ndcg@10_full": 0.07, "eval_users": 943.0},
    ]
    release = {
        "target_epsilon": 1.0,
        "epsilon": 0.9999,
        "delta": 5.3e-4,
        "noise_multiplier": 3.075,
        "sensitivity": 1.0,
        "accountant": "rdp",
        "users": 943,
        "unit": "user",
        "mechanism": "Gaussian mechanism on normalised counts",
        "covers": "the released scores",
    }
    result = {
        "dataset": "ml-100k",
        "date": "2026-01-01",
        "machine": {"cpus": 2, "platform": "linux"},
        "split": "leave-last-out",
        "k": 10,
        "sampled_negatives": 99,
        "reach_fraction": 0.95,
        "baselines_only": False,
        "wall_s": 900.0,
        "baselines": {
            "popularity": entry(0.04),
            "item-knn": entry(0.06, _tuning({"neighbours": [50, 100, 400]}, {"neighbours": 400})),
            "ease": entry(0.08, _tuning({"l2": [100.0, 300.0, 1000.0]}, {"l2": 300.0})),
            "mf": entry(
                0.05,
                _tuning({"dim": [32, 64]}, {"dim": 64}, best_epoch=11, epochs_run=16),
            ),
        },
        "dp_popularity": [
            {
                "epsilon": 1.0,
                "release": release,
                "draws": [_metrics(0.039), _metrics(0.041)],
                "metrics": _metrics(0.04),
                "ndcg@10_full_std": 0.0014,
                "wall_s": 1.0,
                "peak_rss_mib": 500.0,
            }
        ],
        "arms": {
            "mf-nodp": {
                "model": "MF",
                "dp": "none",
                "metrics": _metrics(0.072),
                "settings": settings,
                "scenario": "ml100k-nodp",
                "privacy": None,
                "curve": curve,
                "reached_0.95_reference": {"round": 2.0, "elapsed_s": 120.0, "goal": 0.076},
                "wall_s": 600.0,
                "peak_rss_mib": 3000.0,
            }
        },
    }
    result["reference"] = reference_of(result["baselines"])
    add_ratios(result)
    return result


def test_reference_is_the_best_non_private_baseline_and_ratios_use_it() -> None:
    result = _quality_result()

    assert result["reference"]["baseline"] == "ease"
    assert result["reference"]["ndcg@10_full"] == 0.08
    assert result["baselines"]["popularity"]["over_reference_ndcg@10_full"] == pytest.approx(0.5)
    assert result["dp_popularity"][0]["over_reference_ndcg@10_full"] == pytest.approx(0.5)
    assert result["arms"]["mf-nodp"]["over_reference_ndcg@10_full"] == pytest.approx(0.9)


def test_quality_curves_plot(tmp_path: Path) -> None:
    plot_curves(_quality_result(), tmp_path / "q.png")
    assert (tmp_path / "q.png").stat().st_size > 1000


def test_quality_report_matches_its_golden_file() -> None:
    text = markdown_table(_quality_result())
    if os.environ.get("FEDREC_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def _checkerboard(n: int = 16) -> Split:
    pairs = [(u, i) for u in range(n) for i in range(u % 2, n, 2) if i not in (u, (u + 2) % n)]
    return Split(
        train=Interactions(
            users=np.array([u for u, _ in pairs]),
            items=np.array([i for _, i in pairs]),
            ratings=np.ones(len(pairs), dtype=np.float32),
            timestamps=np.zeros(len(pairs), dtype=np.int64),
        ),
        valid_items=np.array([(u + 2) % n for u in range(n)]),
        test_items=np.arange(n),
        n_users=n,
        n_items=n,
    )


def test_run_baselines_tunes_every_model_and_releases_dp_popularity() -> None:
    # Prepare: every learned baseline solves the checkerboard; popularity cannot.
    split = _checkerboard()
    genres = [["even"] if i % 2 == 0 else ["odd"] for i in range(16)]

    # Execute
    got = run_baselines(
        split, genres=genres, seed=3, dp_epsilons=(2.0,), dp_draws=2, mf_epochs=5, grids=TINY_GRIDS
    )

    # Assert
    assert list(got["baselines"]) == ["popularity", "item-knn", "ease", "ials", "mf"]
    for key in ("item-knn", "ease", "ials", "mf"):
        entry = got["baselines"][key]
        assert entry["metrics"]["hr@10_full"] == 1.0, key
        assert entry["tuning"]["chosen"].keys() == TINY_GRIDS[key].keys()
        assert entry["valid"]["ndcg@10_full"] > 0 and entry["wall_s"] >= 0
        assert entry["metrics"]["ild_genres@10"] > 0
    assert got["baselines"]["popularity"]["tuning"] is None
    (dp,) = got["dp_popularity"]
    assert dp["epsilon"] == 2.0 and len(dp["draws"]) == 2
    assert dp["release"]["epsilon"] <= 2.0 and dp["release"]["users"] == 16
    assert dp["metrics"]["ndcg@10_full"] == pytest.approx(
        np.mean([d["ndcg@10_full"] for d in dp["draws"]])
    )


def _clustered_csv(path: Path) -> Path:
    rng = np.random.default_rng(1)
    rows = ["user,item,rating,timestamp"]
    for u in range(20):
        base = 0 if u < 10 else 10
        for t, i in enumerate(rng.permutation(10)[:8] + base):
            rows.append(f"{u},{i},5,{t}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_baselines_only_benchmark_writes_a_report_that_re_renders(tmp_path: Path) -> None:
    overrides = {"dataset": "generic", "data-path": str(_clustered_csv(tmp_path / "r.csv"))}

    result = run_quality_benchmark(
        overrides=overrides,
        output_dir=tmp_path / "out",
        runs_dir=tmp_path / "runs",
        name="baselines",
        baselines_only=True,
        central_epochs=3,
        dp_epsilons=(4.0,),
        dp_draws=1,
        grids=TINY_GRIDS,
    )

    assert result["arms"] == {} and result["baselines_only"] is True
    saved = json.loads((tmp_path / "out" / "baselines.json").read_text())
    assert saved["reference"] == result["reference"]
    assert not (tmp_path / "out" / "baselines.png").exists()
    first = (tmp_path / "out" / "baselines.md").read_text()
    assert "(centralized baselines only)" in first and "## Federated arms" not in first
    render(saved, tmp_path / "out", "baselines")
    assert (tmp_path / "out" / "baselines.md").read_text() == first


def test_a_result_from_before_the_baselines_is_refused_with_the_fix(tmp_path: Path) -> None:
    old = {key: value for key, value in _quality_result().items() if key != "reference"}
    with pytest.raises(ValueError, match="run `fedrec bench quality` again"):
        render(old, tmp_path, "quality")


def test_quality_benchmark_refuses_unknown_models(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="models must be some of MF, hybrid"):
        run_quality_benchmark(output_dir=tmp_path, runs_dir=tmp_path, models=["ncf"])


def test_a_choice_on_any_grid_edge_is_flagged_but_a_zero_floor_is_not() -> None:
    from fedrec.simulations.reports.quality import _tuning_line

    grid = {"factors": [64, 128], "reg": [0.0, 1.0, 3.0], "alpha": [1.0, 2.0, 4.0]}

    def line(chosen: dict[str, float]) -> str:
        trials = [{"params": chosen, "valid": {"ndcg@10_full": 0.05}}]
        return _tuning_line("ials", {"grid": grid, "chosen": chosen, "trials": trials})

    # a two-value axis has edges too; no shrinkage/decay (0) is a floor, not an edge
    assert line({"factors": 64, "reg": 0.0, "alpha": 2.0}).endswith("on the grid's edge: factors.")
    assert line({"factors": 128, "reg": 3.0, "alpha": 4.0}).endswith(
        "on the grid's edge: factors, reg, alpha."
    )
    grid = {"reg": [0.0, 1.0, 3.0], "alpha": [1.0, 2.0, 4.0]}
    assert "edge" not in line({"reg": 1.0, "alpha": 2.0})
