"""``fedrec bench cooccurrence --tune``: defaults chosen on held-out items, never on test."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.simulations import bench_cooccurrence_tuning as tuning
from fedrec.simulations.loopback import write_tiny_ratings
from fedrec.simulations.reports.cooccurrence_tuning import markdown

GRID = {
    "cooccurrence-rank": (2, 4),
    "cooccurrence-content-weight": (0.1, 1.0),
    "cooccurrence-content-fade": (2.0,),
}


@pytest.fixture
def overrides(tmp_path: Path) -> dict[str, Any]:
    ratings = write_tiny_ratings(tmp_path / "ratings.csv", n_users=30, n_items=20, per_user=7)
    return {"dataset": "generic", "data-path": str(ratings)}


def test_tuning_never_holds_out_a_test_item_and_chooses_the_best_mean(
    overrides: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[np.ndarray] = []
    real = tuning.evaluate_model

    def spy(score: Any, split: Any, **kwargs: Any) -> dict[str, float]:
        target = kwargs.get("target", "test")
        held.append(split.test_items if target == "test" else split.valid_items)
        return real(score, split, **kwargs)

    monkeypatch.setattr(tuning, "evaluate_model", spy)
    result = tuning.run_tuning_bench(overrides=overrides, output_dir=tmp_path, draws=2, grid=GRID)

    outer = load_split(resolve_config({}, overrides).data)[1]
    assert held
    for items in held:  # no ranking ever holds out a user's test item
        assert not np.any((items >= 0) & (items == outer.test_items))
    assert result["targets"] == ["outer valid", "inner test", "inner valid"]
    assert len(result["rows"]) == 4
    means = [row["heldout"]["mean"] for row in result["rows"]]
    for row in result["rows"]:
        assert len(row["heldout_runs"]) == 2
        assert row["heldout"]["mean"] == pytest.approx(np.mean(row["heldout_runs"]))
    best = result["rows"][int(np.argmax(means))]
    assert result["chosen"] == {k: best[k] for k in tuning.KEYS}
    # noise sized for the deployable share graph: SecAgg+'s ring with the survivor floor
    assert result["settings"]["secagg-min-survivors"] == 0.9
    assert result["noise_std_on_sum"] > 0
    assert (tmp_path / "cooccurrence-tuning.md").read_text() == markdown(
        result, "cooccurrence-tuning"
    )


def test_tuning_draws_fresh_noise_for_every_draw(overrides: dict[str, Any], tmp_path: Path) -> None:
    result = tuning.run_tuning_bench(overrides=overrides, output_dir=tmp_path, draws=2, grid=GRID)
    runs = np.array([row["heldout_runs"] for row in result["rows"]])
    assert not np.allclose(runs[:, 0], runs[:, 1])  # the two draws' noise differs


def test_the_report_flags_a_choice_at_the_end_of_its_grid() -> None:
    rows = [
        {
            "cooccurrence-rank": r,
            "cooccurrence-content-weight": 0.1,
            "cooccurrence-content-fade": 2.0,
            "heldout_runs": [v],
            "heldout": {"mean": v, "low": v, "high": v},
        }
        for r, v in ((8, 0.1), (16, 0.2), (32, 0.3))
    ]
    point = {"cooccurrence-rank": 32, "cooccurrence-content-weight": 0.1}
    result = {
        "dataset": "generic",
        "users": 3,
        "items": 3,
        "date": "today",
        "epsilon": 4.0,
        "placement": "secagg",
        "noise_std_on_sum": 1.0,
        "draws": 1,
        "grid": {
            "cooccurrence-rank": [8, 16, 32],
            "cooccurrence-content-weight": [0.1],
            "cooccurrence-content-fade": [2.0],
        },
        "popularity_heldout": 0.1,
        "rows": rows,
        "chosen": {**point, "cooccurrence-content-fade": 2.0},
        "shipped": {**point, "cooccurrence-rank": 16, "cooccurrence-content-fade": 2.0},
    }
    text = markdown(result, "t")
    assert "At an end of its grid: cooccurrence-rank" in text
    assert "rank 2 of 3 on the held-out items" in text


def _with_tuning(settings: dict[str, float], note: str | None) -> dict[str, Any]:
    chosen = {
        "cooccurrence-rank": 512,
        "cooccurrence-content-weight": 0.03,
        "cooccurrence-content-fade": 1000.0,
    }
    out: dict[str, Any] = {
        "settings": settings,
        "defaults_chosen_on": "ml-100k",
        "defaults_tuning": {
            "source": "t.json",
            "date": "d",
            "draws": 5,
            "epsilon": 4.0,
            "chosen": chosen,
        },
    }
    if note is not None:
        out["defaults_note"] = note
    return out


def test_the_report_says_whether_the_run_used_the_held_out_choice() -> None:
    from fedrec.simulations.reports.cooccurrence import _defaults_lines

    tuned = {
        "cooccurrence-rank": 512,
        "cooccurrence-content-weight": 0.03,
        "cooccurrence-content-fade": 1000.0,
    }
    shipped = {
        "cooccurrence-rank": 128,
        "cooccurrence-content-weight": 0.1,
        "cooccurrence-content-fade": 2.0,
    }
    used = " ".join(_defaults_lines(_with_tuning(tuned, "why")))
    assert "first look at test" in used and "optimistic" not in used and "why" not in used
    kept = " ".join(_defaults_lines(_with_tuning(shipped, "the reason")))
    assert "optimistic by that choice" in kept  # chosen looking at test: said so
    assert "cooccurrence-rank = 512" in kept and "the reason" in kept
    assert "first look at test" not in kept
