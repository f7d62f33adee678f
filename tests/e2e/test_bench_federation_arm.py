"""A federation benchmark arm for real: `fedrec simulate` in its own process, measured."""

from pathlib import Path

import pytest

from fedrec.simulations import bench_federation
from tests.e2e.helpers import write_tiny_ratings

pytestmark = pytest.mark.slow


def test_a_flower_arm_runs_fedrec_simulate_and_names_the_processes_at_its_peak(
    tmp_path: Path,
) -> None:
    data = write_tiny_ratings(tmp_path / "r.csv", n_users=6, n_items=20, per_user=8)
    base = {
        "dataset": "generic",
        "data-path": str(data),
        "embedding-dim": 4,
        "text-tower": "off",
        "output-dir": str(tmp_path / "runs"),
    }
    settings = bench_federation._round_settings(base, "arm", 1.0)
    arm = bench_federation._flower_rounds(settings, 6)
    assert arm["clients_ok"] == [6, 6] and len(arm["round_s"]) == 2
    assert 0 < arm["peak_pss_mib"] <= arm["peak_rss_mib"]
    roles = [p["role"] for p in arm["processes"]]
    assert roles.count("worker (ClientAppActor)") >= 1 and "Ray raylet" in roles
    assert any(r.startswith("driver") for r in roles)
    assert sum(p["rss"] for p in arm["processes"]) == pytest.approx(arm["peak_rss_mib"])
