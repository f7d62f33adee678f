"""The federation benchmark's bookkeeping (the Flower arms themselves run in the e2e tests)."""

from pathlib import Path
from typing import Any

import pytest

from fedrec.simulations import bench_federation
from tests.e2e.helpers import write_tiny_ratings


def test_two_runs_in_the_same_runs_dir_do_not_meet_each_others_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bug: the arms' runs had fixed names under runs_dir, so a second invocation stopped
    # at "bench-overhead-10 already holds checkpoints up to round 2".
    seen: list[Path] = []

    def fake_flower(settings: dict[str, Any], num_supernodes: int) -> dict[str, Any]:
        run_dir = Path(settings["output-dir"]) / settings["run-name"]
        assert not run_dir.exists(), "a previous invocation's run is in the way"
        run_dir.mkdir(parents=True)
        seen.append(run_dir)
        # The arm beside the configured one: Flower with one user per node.
        per_user = settings.get("simulation-users-per-message") == 1
        assert per_user == ("per-user" in settings["run-name"])  # type: ignore[operator]
        return {"round_s": [2.0, 1.0], "clients_ok": [3, 3], "wall_s": 3.0, "peak_rss_mib": 1.0}

    def fake_plain(cfg: Any, n_clients: int, state_root: Path) -> dict[str, Any]:
        state_root.mkdir(parents=True)
        return {"round_s": 1.0, "clients": n_clients, "peak_rss_mib": 1.0}

    monkeypatch.setattr(bench_federation, "_flower_rounds", fake_flower)
    monkeypatch.setattr(bench_federation, "_plain_round", fake_plain)
    monkeypatch.setattr(
        bench_federation, "import_rss", lambda modules: dict.fromkeys(("rss", "uss", "pss"), 1.0)
    )
    data = write_tiny_ratings(tmp_path / "r.csv", n_users=5, n_items=20, per_user=8)
    runs = tmp_path / "runs"
    for _ in range(2):
        result = bench_federation.run_federation_benchmark(
            overrides={"dataset": "generic", "data-path": str(data)},
            output_dir=tmp_path / "out",
            runs_dir=runs,
            clients_per_round=(3,),
            catalogue_sizes=(50,),
            scale_clients=(4,),
        )
        assert result["overhead"][0]["overhead_round2"] == 1.0
        assert result["overhead"][0]["overhead_round2_per_user"] == 1.0
        assert result["clients"][0]["clients_per_round"] == 4
    # Per invocation: Flower with cohorts and per user, a catalogue arm, a clients arm.
    assert len(seen) == 8 and len(set(seen)) == 8
    assert not any(p.exists() for p in seen)  # the scratch folders are removed
    assert (tmp_path / "out" / "federation.md").is_file()
