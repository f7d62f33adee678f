"""Benchmark reports: what they compute from measurements, and that they print it."""

from pathlib import Path

from fedrec.simulations.bench import _first_reaching
from fedrec.simulations.bench_federation import markdown_report, plot, write_synthetic


def _result() -> dict:
    def arm(n: int, flower: tuple[float, float], plain: float) -> dict:
        return {
            "clients_per_round": n,
            "flower": {"round_s": list(flower), "peak_rss_mib": 100.0 + n},
            "plain": {"round_s": plain},
            "overhead_round1": flower[0] / plain,
            "overhead_round2": flower[1] / plain,
        }

    return {
        "date": "2026-01-01T00:00:00",
        "dataset": "ml-100k",
        "machine": {"cpus": 2, "platform": "linux"},
        "settings": {
            "local-epochs": 2,
            "embedding-dim": 32,
            "strategy": "fedavg",
            "dp-enabled": True,
            "noise-multiplier": 1.0,
            "dp-sample-rate": 0.1,
        },
        "overhead": [arm(10, (9.0, 1.0), 0.5), arm(100, (12.0, 6.0), 5.0)],
        "catalogue": [{**arm(10, (3.0, 2.0), 1.0), "n_items": 1000}],
    }


def test_federation_report_states_measured_ratios(tmp_path: Path) -> None:
    text = markdown_report(_result(), "federation.png")
    assert "| 100 | 12.0 | 6.0 | 5.0 | 1.20x |" in text
    assert "| 1000 | 10 | 2.0 | 1.0 | 2.00x |" in text
    assert "DP-SGD on" in text and "text-tower off" in text
    no_catalogue = markdown_report({**_result(), "catalogue": []}, "federation.png")
    assert "Catalogue size" not in no_catalogue and "| 100 | 12.0 |" in no_catalogue
    # Bug: the plot log-scaled the empty catalogue axis and crashed after the JSON was saved.
    plot({**_result(), "catalogue": []}, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 1000
    plot(_result(), tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_first_round_reaching_the_goal() -> None:
    curve = [
        {"round": 1.0, "elapsed_s": 10.0, "ndcg@10_full": 0.02},
        {"round": 2.0, "elapsed_s": 20.0, "ndcg@10_full": 0.05},
        {"round": 3.0, "elapsed_s": 30.0, "ndcg@10_full": 0.06},
    ]
    assert _first_reaching(curve, 0.045) == {"round": 2.0, "elapsed_s": 20.0, "goal": 0.045}
    assert _first_reaching(curve, 0.07) is None


def test_synthetic_catalogue_is_seeded_and_well_formed(tmp_path: Path) -> None:
    a = write_synthetic(tmp_path / "a", n_users=5, n_items=50, per_user=4, seed=1).read_text()
    b = write_synthetic(tmp_path / "b", n_users=5, n_items=50, per_user=4, seed=1).read_text()
    assert a == b
    rows = a.strip().splitlines()
    assert rows[0] == "user,item,rating,timestamp" and len(rows) == 1 + 5 * 4
    pairs = {tuple(r.split(",")[:2]) for r in rows[1:]}
    assert len(pairs) == 20  # no duplicate (user, item) rows
    # The whole catalogue is listed, rated or not, so the model really has 50 items.
    items = (tmp_path / "a" / "items.csv").read_text().strip().splitlines()
    assert len(items) == 1 + 50


def _quality_result() -> dict:
    metrics = {
        "hr@10_full": 0.1,
        "ndcg@10_full": 0.05,
        "hr@10_sampled": 0.5,
        "ndcg@10_sampled": 0.3,
        "coverage@10": 0.2,
    }
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
    }
    curve = [{"round": 1.0, "elapsed_s": 60.0, "ndcg@10_full": 0.05, "eval_users": 10.0}]

    def fed(ndcg: float, tower: str) -> dict:
        return {
            "metrics": {**metrics, "ndcg@10_full": ndcg},
            "settings": {**settings, "text-tower": tower},
            "scenario": "ml100k-nodp",
            "curve": curve,
            "reached_0.95_central": None,
            "wall_s": 60.0,
            "peak_rss_mib": 100.0,
        }

    return {
        "dataset": "ml-100k",
        "date": "2026-01-01",
        "machine": {"cpus": 2, "platform": "linux"},
        "split": "leave-last-out",
        "arms": {
            "popularity": {"metrics": metrics, "wall_s": 0.0, "peak_rss_mib": 1.0},
            "centralized MF": {"metrics": metrics, "wall_s": 1.0, "peak_rss_mib": 1.0},
            "federated MF (no DP)": fed(0.06, "off"),
            "federated hybrid (no DP)": fed(0.04, "heads"),
        },
        "federated_over_central_ndcg@10_full": 1.2,
        "federated_over_central_arm": "federated MF (no DP)",
        "over_central_ndcg@10_full": {
            "federated MF (no DP)": 1.2,
            "federated hybrid (no DP)": 0.8,
        },
    }


def test_quality_report_names_each_arms_model_and_ratio(tmp_path: Path) -> None:
    from fedrec.simulations.bench import markdown_table, plot_curves

    text = markdown_table(_quality_result())
    assert "- federated hybrid (no DP) (scenario `ml100k-nodp`, text-tower heads)" in text
    assert "- federated MF (no DP) (scenario `ml100k-nodp`, text-tower off)" in text
    assert "federated MF (no DP) / centralized NDCG@10 (full ranking): **1.200**." in text
    assert "Other arms / centralized: federated hybrid (no DP) 0.800." in text
    assert "| federated hybrid (no DP) | 0.1000 | 0.0400 |" in text
    plot_curves(_quality_result(), tmp_path / "q.png")
    assert (tmp_path / "q.png").stat().st_size > 1000


def test_quality_benchmark_refuses_unknown_models(tmp_path: Path) -> None:
    import pytest

    from fedrec.simulations.bench import run_quality_benchmark

    with pytest.raises(ValueError, match="models must be some of MF, hybrid"):
        run_quality_benchmark(output_dir=tmp_path, runs_dir=tmp_path, models=["ncf"])
