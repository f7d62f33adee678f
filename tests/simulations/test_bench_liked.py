"""fedrec bench cold-start --liked on a tiny catalogue: the protocol, the choice, the pairs."""

from pathlib import Path

import numpy as np
import pytest

from fedrec.simulations.bench_liked import (
    DRAWS,
    GIVEN,
    LIKED_GRID,
    MODELS,
    _Arms,
    choose_weight,
    run_liked_bench,
)

from .test_bench_intents import _data


def _arms_with(best: float) -> _Arms:
    """Dev arms where weight ``best`` finds every target and the others none."""
    arms = _Arms()
    for w in LIKED_GRID:
        scores = np.array([1.0, 0.0, 0.0]) if w == best else np.array([0.0, 0.0, 1.0])
        for model in MODELS:
            for draw in DRAWS:
                for n in GIVEN:
                    arms.add(
                        f"{draw}/{n}/{model}/{w:g}", scores, np.zeros(0, np.int64), np.array([0])
                    )
    return arms


def test_the_weight_is_the_best_dev_ndcg_among_those_that_look_right() -> None:
    good = {"a": 0.9, "b": 0.8}
    bad = {"a": 0.9, "b": 0.2}  # one profile's answer mostly off its genres
    best = LIKED_GRID[1]
    shares = {m: {f"{w:g}": good for w in LIKED_GRID} for m in MODELS}
    assert choose_weight(_arms_with(best), shares)["chosen"] == best
    # the best NDCG does not read right for one model: the next that does is taken
    shares["non-private"][f"{best:g}"] = bad
    chosen = choose_weight(_arms_with(best), shares)
    assert chosen["chosen"] != best and chosen["any_looks_right"]
    # none reads right: the weight with the highest least share
    shares = {m: {f"{w:g}": bad for w in LIKED_GRID} for m in MODELS}
    shares["private default"][f"{LIKED_GRID[-1]:g}"] = {"a": 0.9, "b": 0.4}
    shares["non-private"][f"{LIKED_GRID[-1]:g}"] = {"a": 0.9, "b": 0.4}
    fallback = choose_weight(_arms_with(best), shares)
    assert fallback["chosen"] == LIKED_GRID[-1] and not fallback["any_looks_right"]


@pytest.mark.slow
def test_the_bench_holds_users_out_of_both_releases_and_pairs_them(tmp_path: Path) -> None:
    ratings = _data(tmp_path, users=80)
    overrides = {"dataset": "generic", "data-path": str(ratings), "text-tower": "heads"}
    result = run_liked_bench(
        overrides=overrides, output_dir=tmp_path, runs_dir=tmp_path / "runs", seeds=(42,)
    )
    assert result["selection"]["chosen"] in LIKED_GRID
    (seed,) = result["per_seed"]
    assert seed["users"] >= 2
    cell = seed["rows"]["first/3"]
    assert cell["best_reference"] in cell["references"]
    best = cell["references"][cell["best_reference"]]["ndcg@10"]
    assert all(r["ndcg@10"] <= best for r in cell["references"].values())
    # the paired difference is the served mean minus the best reference's
    paired = result["paired"]["first/3/private default/vs best"]
    assert paired["mean"] == pytest.approx(cell["private default"]["ndcg@10"] - best)
    assert result["private_guarantee"]["unit"] == "user"
    assert (tmp_path / "coldstart-liked.md").is_file()
