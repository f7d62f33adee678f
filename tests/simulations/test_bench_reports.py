"""Benchmark reports: what they compute from measurements, and that they print it."""

from pathlib import Path

from fedrec.simulations.bench import _first_reaching
from fedrec.simulations.bench_federation import write_synthetic
from fedrec.simulations.reports.federation import markdown_report, plot


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
            "dp-noise-multiplier": 1.0,
            "dp-sample-rate": 0.1,
        },
        "overhead": [arm(10, (9.0, 1.0), 0.5), arm(100, (12.0, 6.0), 5.0)],
        "catalogue": [
            {**arm(10, (3.0, 2.0), 1.0), "n_items": 1000, "n_users": 200, "per_user": 40}
        ],
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


def test_the_memory_section_lists_the_peaks_processes_and_the_import_costs() -> None:
    result = _result()
    rows = [
        {"role": "worker (ClientAppActor)", "rss": 500.0, "uss": 300.0, "pss": 380.0},
        {
            "role": "driver (server, SuperLink, simulation engine)",
            "rss": 400,
            "uss": 350,
            "pss": 360,
        },
    ]
    result["overhead"][-1]["flower"].update(peak_pss_mib=740.0, processes=rows)
    for arm in result["overhead"]:
        arm["flower"].setdefault("peak_pss_mib", 50.0)
    result["imports"] = {"torch alone": {"rss": 221.0, "uss": 208.0, "pss": 210.0}}
    text = markdown_report(result, "federation.png")
    assert "## Memory at the peak (100 clients, `fedrec simulate`)" in text
    assert "| worker (ClientAppActor) | 500 | 300 | 380 |" in text
    assert "| all 2 | 900 | 650 | 740 |" in text
    assert "| torch alone | 221 | 208 | 210 |" in text
    assert "| 100 | 12.0 | 6.0 | 5.0 | 1.20x | 200 | 740 |" in text  # RSS, then PSS


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
