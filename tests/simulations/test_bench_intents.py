"""fedrec bench cold-start --intents on a tiny catalogue with MovieLens genres."""

import json
from pathlib import Path

import numpy as np
import pytest

from fedrec.simulations.bench_intents import ARMS, run_intents_bench
from fedrec.simulations.report import render

GENRES = ["Horror", "Musical", "Sci-Fi", "Western", "Comedy", "Animation|Children's"]


def _data(tmp_path: Path, users: int = 60, items: int = 36) -> Path:
    rng = np.random.default_rng(3)
    with (tmp_path / "items.csv").open("w") as f:
        f.write("item,title,genres\n")
        for i in range(items):
            f.write(f"{i},Film number {i} ({1950 + i}),{GENRES[i % len(GENRES)]}\n")
    rows = ["user,item,rating,timestamp"]
    for u in range(users):
        taste = u % len(GENRES)
        liked = [i for i in range(items) if i % len(GENRES) == taste]
        others = [i for i in range(items) if i not in liked]
        picks = list(rng.choice(liked, 4, replace=False)) + list(
            rng.choice(others, 3, replace=False)
        )
        rows += [f"{u},{i},5,{t}" for t, i in enumerate(picks)]
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow
def test_the_bench_chooses_weights_on_development_queries_and_reports_every_arm(
    tmp_path: Path,
) -> None:
    ratings = _data(tmp_path)
    overrides = {"dataset": "generic", "data-path": str(ratings), "user-dp": "central"}
    result = run_intents_bench(overrides=overrides, output_dir=tmp_path, name="intents")
    assert set(result["arms"]) == set(ARMS)
    sel = result["selection"]
    findable = [r for r in sel["tried"] if r["dev_new_items_found"] >= sel["new_items_bar"]] or sel[
        "tried"
    ]
    allowed = [r for r in findable if r["valid_genre_text_ndcg"] >= sel["popularity_valid_ndcg"]]
    key = "dev_precision" if allowed else "valid_genre_text_ndcg"
    best = max(allowed or findable, key=lambda r: r[key])
    assert sel["chosen"] == {"similarity": best["similarity"], "prior": best["prior"]}
    assert sel["constraint_met"] == bool(allowed)
    served = result["arms"]["served"]
    assert 0 <= served["precision@10"] <= 1 and served["intents"] >= 1
    # the popularity arm answers every query with the same list
    tops = {tuple(r["top"]) for r in result["arms"]["popularity"]["rows"]}
    assert len(tops) == 1
    assert result["user_privacy"]["unit"] == "user"
    # every made-up item was added, ranked among the catalogue and the other new items, then
    # removed again
    n_new = len(result["new_items"])
    assert n_new >= 10
    assert all(1 <= r["rank"] <= result["items"] + n_new for r in result["new_items"])
    before = (tmp_path / "intents.md").read_text()
    render(
        json.loads((tmp_path / "intents.json").read_text()),
        tmp_path,
        "intents",
        kind="coldstart-intents",
    )
    assert (tmp_path / "intents.md").read_text() == before
