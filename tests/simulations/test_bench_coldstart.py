"""Cold-start benchmark pieces: the held-out split, the warm data set, texts and report."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.server.serving import FOLD_IN_WEIGHT, Recommender, TextTowers
from fedrec.shared.config import DataConfig
from fedrec.shared.data import load_dataset
from fedrec.shared.data.catalog import item_text
from fedrec.shared.data.dataset import Dataset, Interactions, ItemCatalog
from fedrec.shared.models.initial import USER_HEAD_B, USER_HEAD_W
from fedrec.simulations.bench_coldstart import (
    ColdSplit,
    _best_weight,
    centralized_references,
    choose_cold,
    genre_text,
    run_coldstart_benchmark,
    user_cold_start,
    write_warm_dataset,
)
from fedrec.simulations.coldstart_rows import (
    RANDOM,
    best_reference,
    find,
    reference_label,
    user_label,
)
from fedrec.simulations.coldstart_settings import check_repeats
from fedrec.simulations.reports.coldstart import _repeat_lines, coldstart_markdown


@settings(max_examples=40, deadline=None)
@given(st.integers(10, 2000), st.integers(10, 2000), st.floats(0.01, 0.5), st.integers(0, 99))
def test_held_out_sets_are_seeded_sized_and_in_range(
    n_users: int, n_items: int, fraction: float, seed: int
) -> None:
    a = choose_cold(n_users, n_items, fraction=fraction, seed=seed)
    b = choose_cold(n_users, n_items, fraction=fraction, seed=seed)
    np.testing.assert_array_equal(a.users, b.users)
    assert a.users.size == max(1, round(n_users * fraction)) == np.unique(a.users).size
    assert a.items.size == max(1, round(n_items * fraction)) == np.unique(a.items).size
    assert a.users.max() < n_users and a.items.max() < n_items


def _dataset() -> Dataset:
    titles = ["Heat, the movie (1995)", "Babe (1995)", 'Say "Anything" (1989)', "Alien (1979)"]
    genres = [["Action", "Crime"], ["Comedy"], [], ["Horror", "Sci-Fi"]]
    users = np.array([0, 0, 1, 1, 2, 2, 2])
    items = np.array([0, 1, 1, 2, 0, 2, 3])
    return Dataset(
        name="tiny",
        interactions=Interactions(
            users=users,
            items=items,
            ratings=np.array([5, 4, 3, 2, 1, 4.5, 5], np.float32),
            timestamps=np.arange(7, dtype=np.int64),
        ),
        items=ItemCatalog(
            raw_ids=["1", "2", "3", "4"],
            titles=titles,
            genres=genres,
            texts=[item_text(t, g) for t, g in zip(titles, genres, strict=True)],
            years=[1995, 1995, 1989, 1979],
        ),
        n_users=3,
        user_raw_ids=["u1", "u2", "u3"],
    )


def test_warm_data_set_drops_cold_rows_and_keeps_item_texts(tmp_path: Path) -> None:
    full = _dataset()
    cold = ColdSplit(users=np.array([1]), items=np.array([3]))
    ratings = write_warm_dataset(full, cold, tmp_path / "warm")
    warm = load_dataset(DataConfig(dataset="generic", data_path=str(ratings)))
    assert warm.user_raw_ids == ["u1", "u3"]
    assert warm.items.raw_ids == ["1", "2", "3"]  # item 3 stays: it is warm, just unrated
    assert len(warm.interactions) == 4  # u2's rows and the row of cold item 4 are gone
    # Titles with commas and quotes survive, and the encoder reads the very same text.
    assert warm.items.texts == full.items.texts[:3]


def test_genre_text_names_the_most_frequent_genres_without_ids() -> None:
    text = genre_text([["Drama", "War"], ["Drama"], ["Comedy", "War"], ["Drama"]])
    assert text == "I enjoy Drama, War and Comedy movies."
    assert genre_text([[]]) == "I enjoy movies."
    assert genre_text([["Horror"]]) == "I enjoy Horror movies."


def _protocol(**extra: object) -> dict[str, object]:
    """A report's protocol block for rendering tests (3 held-out users, 2 items)."""
    return {
        "dataset": "d",
        "cold_users": 3,
        "cold_items": 2,
        "held_out_fraction": 0.1,
        "rounds": 1,
        "loop": "plain",
        "train_settings": {},
        "k": 10,
        "given": [1, 3, 5],
        "random_liked_given": 3,
        "goals": {"liked": {"given": 3, "ratio": 1.5}, "text": {"ratio": 1.2}},
        **extra,
    }


def test_report_states_ratios_against_the_baselines() -> None:
    m = {"ndcg@10": 0.5, "hr@10": 0.9, "n_users": 3}
    served = {"method": "served", "model": "hybrid", "given": 3, "fold_in_weight": 0.2}
    result = {
        "created_at": "now",
        "protocol": _protocol(),
        "user_cold_start": {
            "rows": [{"method": "popularity", **m, "ndcg@10": 0.25}, {**served, **m}]
        },
        "item_cold_start": [
            {"method": "random", **m, "ndcg@10": 0.1},
            {"method": "text-map", "model": "hybrid", "served": True, **m},
        ],
        "warm_users": {"mf": {"ndcg@10_full": 0.1, "hr@10_full": 0.2, "n_users": 5}},
        "timings": {"total (s)": 1.0},
    }
    md = coldstart_markdown(result)
    assert f"| {user_label(served)} | 0.5000 | 0.9000 | 2.00x | 3 |" in md
    assert "| hybrid, served: text map | 0.5000 | 0.9000 | 5.00x | 3 |" in md


def _two_taste_dataset() -> tuple[Dataset, ColdSplit]:
    """Items 0-19 (taste A, liked by 20 users) and 20-39 (taste B, 10 users); 4 new B users."""
    rng = np.random.default_rng(0)
    users, items = [], []
    groups = [0] * 20 + [1] * 10 + [1] * 4  # the last 4 users are the held-out ones
    for u, g in enumerate(groups):
        chosen = rng.choice(20, 12 if u >= 30 else 10, replace=False) + 20 * g
        users += [u] * chosen.size
        items += chosen.tolist()
    n_items = 40
    titles = [f"Movie {i} (1990)" for i in range(n_items)]
    return (
        Dataset(
            name="two-tastes",
            interactions=Interactions(
                users=np.array(users),
                items=np.array(items),
                ratings=np.full(len(users), 5.0, np.float32),
                timestamps=np.arange(len(users), dtype=np.int64),
            ),
            items=ItemCatalog(
                raw_ids=[str(i) for i in range(n_items)],
                titles=titles,
                genres=[["Action" if i < 20 else "Romance"] for i in range(n_items)],
                texts=[item_text(t, []) for t in titles],
                years=[1990] * n_items,
            ),
            n_users=len(groups),
            user_raw_ids=[f"u{u}" for u in range(len(groups))],
        ),
        ColdSplit(users=np.arange(30, 34), items=np.array([39])),
    )


def test_centralized_references_use_co_occurrence_that_popularity_misses(tmp_path: Path) -> None:
    full, cold = _two_taste_dataset()
    warm = load_dataset(
        DataConfig(dataset="generic", data_path=str(write_warm_dataset(full, cold, tmp_path)))
    )
    refs = centralized_references(full, warm, cold, seed=1)
    assert refs == centralized_references(full, warm, cold, seed=1)  # seeded
    popularity = find(refs, method="popularity", draw="first")
    assert popularity["n_users"] == 4
    # Popularity ranks the 20 taste-A items first: nothing relevant for taste-B users.
    assert popularity["ndcg@10"] == 0.0
    for row in (find(refs, method="item-knn", given=3), find(refs, method="ease", given=5)):
        assert row["ndcg@10"] > 0.5, row
    assert reference_label(find(refs, method="ease", given=5)) == "EASE, l2 500 (5 liked)"
    assert find(refs, method="ease", draw="ceiling")["ndcg@10"] > 0.5
    # The swept rows keep only their best weight, with it and the grid it came from.
    knn3 = find(refs, method="item-knn-log-popularity", draw="first", given=3)
    assert knn3["grid"] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0] and knn3["ndcg@10"] > 0.5
    assert "(best of 0.5/1/2/4/8/16 here)" in reference_label(knn3)
    # The text's genre (Romance, never Action) lifts taste-B items over the popular A ones.
    genre = find(refs, method="genre-log-popularity")
    assert genre["ndcg@10"] > 0.5 and reference_label(genre).endswith("(text)")
    # Randomly drawn liked items: their own popularity row, the same users.
    drawn_pop = find(refs, method="popularity", draw=RANDOM)
    assert drawn_pop["n_users"] == 4 and drawn_pop["ndcg@10"] == 0.0
    best = best_reference(refs, draw=RANDOM)
    assert best is not None and best[1] == 0
    assert reference_label(best[0]).startswith("3 liked at random: item-kNN")
    md = coldstart_markdown(
        {
            "created_at": "now",
            "protocol": _protocol(cold_users=4, cold_items=1),
            "user_cold_start": {"rows": [popularity]},
            "user_cold_start_centralized_references": refs,
            "item_cold_start": [{"method": "random", "ndcg@10": 0.1, "hr@10": 0.1, "n_users": 1}],
            "warm_users": {},
            "timings": {},
        }
    )
    assert "### Centralized references (not private" in md


def test_a_tiny_dp_run_end_to_end_reports_what_training_spent(tmp_path: Path) -> None:
    full, _ = _two_taste_dataset()
    nobody = ColdSplit(users=np.array([], np.int64), items=np.array([], np.int64))
    ratings = write_warm_dataset(full, nobody, tmp_path / "data")
    out = tmp_path / "out"
    result = run_coldstart_benchmark(
        output_dir=out,
        runs_dir=tmp_path / "runs",
        rounds=1,
        fraction=0.1,
        name="coldstart-dp",
        repeats=2,
        overrides={
            "dataset": "generic",
            "data-path": str(ratings),
            "embedding-dim": 4,
            "personalize-epochs": 1,
            "dp-enabled": True,
            "client-optimizer": "sgd",
            "learning-rate": 0.1,
        },
    )
    assert set(result["privacy"]) == {"mf", "hybrid"}
    for spent in result["privacy"].values():
        assert spent["dp_enabled"] and 0 < spent["epsilon_max"] < float("inf")
        assert spent["noise_multiplier"] == 2.1 and spent["dp_sample_rate"] == 1.0
    assert result["protocol"]["cold_users"] == 3 and result["protocol"]["cold_items"] == 4
    text = (out / "coldstart-dp.md").read_text()
    assert "## Privacy spent in training" in text
    # Warm users are compared user by user; the paired mean is the difference of the means.
    diff, warm = result["warm_users_paired"], result["warm_users"]
    assert diff["n_users"] == warm["hybrid"]["n_users"] == warm["mf"]["n_users"]
    gap = warm["hybrid"]["ndcg@10_full"] - warm["mf"]["ndcg@10_full"]
    assert abs(diff["mean"] - gap) < 1e-9 and diff["low"] <= diff["mean"] <= diff["high"]
    assert f"Hybrid - MF only, paired user by user: {diff['mean']:+.4f}" in text
    # The second run trained again, with fresh noise: its models differ from the first's.
    (work,) = (tmp_path / "runs").glob("bench-coldstart-*")
    for folder in ("clients-mf", "clients-hybrid"):
        with (
            np.load(work / folder / "global.npz") as a,
            np.load(work / "repeat-2" / folder / "global.npz") as b,
        ):
            assert not np.array_equal(a["item_factors"], b["item_factors"])
    first, second = result["repeats"]
    assert first["warm_hybrid"] == warm["hybrid"]["ndcg@10_full"]
    assert "## Repeated training (2 runs: same split and seeds" in text
    assert "| 2 | " in text
    assert f"ε = {result['privacy']['hybrid']['epsilon_max']:.3g} per interaction" in text
    assert json.loads((out / "coldstart-dp.json").read_text())["privacy"] == result["privacy"]


def test_repeats_vary_the_noise_under_dp_and_the_seed_without() -> None:
    assert check_repeats({"dp-enabled": True}, 3) is True
    assert check_repeats(None, 3) is False  # the bench trains without DP by default
    with pytest.raises(ValueError, match="same noise"):
        check_repeats({"dp-enabled": True, "reproducible-noise": True}, 2)
    rows = [
        {"seed": 42.0, "warm_mf": 0.05, "warm_hybrid": 0.06, "new_user_text": 1.0},
        {"seed": 43.0, "warm_mf": 0.04, "warm_hybrid": 0.06, "new_user_text": 0.8},
    ]
    text = "\n".join(_repeat_lines(rows, "seed", given=3))
    assert "| run | warm MF only | warm hybrid | new user, text (x popularity) |" in text
    assert "2 runs: one seed each" in text
    assert "| 1 (seed 42) | 0.0500 | 0.0600 | 1.00x |" in text
    assert "| mean | 0.0450 ± 0.0050 | 0.0600 ± 0.0000 | 0.90x ± 0.10x |" in text
    assert "hybrid - MF only over the 2 runs: +0.0150" in text
    # The centralized references depend on the split: one column per seed, none for noise.
    for row, ref in zip(rows, (1.2, 1.1), strict=True):
        row["best_reference_text"] = ref
    assert "| 0.90x ± 0.10x | 1.15x ± 0.05x |" in "\n".join(_repeat_lines(rows, "seed", given=3))
    assert "best reference" not in "\n".join(_repeat_lines(rows, "dp-noise", given=3))


def test_report_shows_the_fold_in_weight_sweep_and_the_seeds_it_was_not_chosen_on() -> None:
    def m(ndcg: float) -> dict[str, float]:
        return {"ndcg@10": ndcg, "hr@10": 0.9, "n_users": 3}

    users = [{"method": "popularity", **m(0.5)}]
    text_served = {"method": "served", "model": "hybrid", "text": True}
    paired = [{**text_served, "mean": 0.05, "se": 0.01, "low": 0.03, "high": 0.07, "n_users": 3.0}]
    for w, gain in ((0.0, 1.0), (0.2, 1.2), (1.0, 0.8)):
        for n in (1, 3, 5):
            row = {"method": "fold-in-weight", "model": "hybrid", "given": n, "weight": w}
            users.append({**row, **m(0.5 * gain)})
    repeats = [
        {"seed": 42.0, "warm_mf": 0.1, "warm_hybrid": 0.1, "new_user_liked": 1.2},
        {"seed": 43.0, "warm_mf": 0.1, "warm_hybrid": 0.1, "new_user_liked": 1.1},
        {"seed": 44.0, "warm_mf": 0.1, "warm_hybrid": 0.1, "new_user_liked": 1.0},
    ]
    result = {
        "created_at": "now",
        "protocol": _protocol(fold_in_weight=0.2, fold_in_weight_chosen_on_seed=42),
        "user_cold_start": {"rows": users, "vs_popularity": paired},
        "item_cold_start": [{"method": "random", **m(0.1)}],
        "warm_users": {"mf": {"ndcg@10_full": 0.1, "hr@10_full": 0.2, "n_users": 5}},
        "repeats": repeats,
        "repeats_vary": "seed",
        "timings": {"total (s)": 1.0},
    }
    md = coldstart_markdown(result)
    assert "| 0 | 1.00x | 1.00x | 1.00x |" in md
    assert "| 0.2 (served) | 1.20x | 1.20x | 1.20x |" in md
    assert "| 1 | 0.80x | 0.80x | 0.80x |" in md
    assert "| fold-in weight 0.2 (3 liked) |" not in md  # sweep rows stay out of the main table
    assert "- hybrid, served (text only): +0.0500 (+0.0300 to +0.0700, 3 users): better" in md
    assert "| hybrid, served (text only) |" not in md  # the paired rows are not table rows
    # Only the runs on other seeds count as unseen: (1.1 + 1.0) / 2.
    assert "(seeds 43, 44), new users from 3 liked items: 1.05x popularity" in md
    result["repeats_vary"] = "dp-noise"  # repeats of one seed: nothing unseen to report
    assert "was not chosen on (seeds" not in coldstart_markdown(result)


def test_new_users_are_scored_at_the_served_weight_and_along_the_sweep(tmp_path: Path) -> None:
    # Taste A (items 0-19) is the popular one and has the large bias; the held-out users
    # like taste B. The bias alone (weight 0) misses them; the fold-in finds them.
    full, cold = _two_taste_dataset()
    warm = load_dataset(
        DataConfig(dataset="generic", data_path=str(write_warm_dataset(full, cold, tmp_path)))
    )
    n = warm.n_items
    taste_b = np.array([int(raw) >= 20 for raw in warm.items.raw_ids])
    q = np.stack([~taste_b, taste_b], axis=1).astype(np.float32)
    b = np.where(taste_b, 0.0, 1.0).astype(np.float32)
    rng = np.random.default_rng(0)
    heads = {
        USER_HEAD_W: rng.normal(0, 0.01, (2, 384)).astype(np.float32),
        USER_HEAD_B: np.zeros(2, np.float32),
    }
    rec_mf = Recommender(q, b, warm.items)
    rec_hy = Recommender(
        q,
        b,
        warm.items,
        towers=TextTowers(heads),
        item_text_emb=rng.normal(0, 1, (n, 384)).astype(np.float32),
    )
    out = user_cold_start(full, warm, cold, rec_mf, rec_hy)
    users = out["rows"]

    def sweep(w: float) -> dict[str, float]:
        return find(users, method="fold-in-weight", given=3, weight=w)

    assert sweep(0.0)["ndcg@10"] == 0.0
    assert sweep(1.0)["ndcg@10"] > 0.5
    served = find(users, method="served", given=3)
    assert served["fold_in_weight"] == FOLD_IN_WEIGHT
    assert user_label(served) == (
        f"hybrid, served: both, then fold-in at weight {FOLD_IN_WEIGHT:g} (3 liked)"
    )
    metrics = ("ndcg@10", "hr@10", "n_users")
    assert {k: served[k] for k in metrics} == {k: sweep(FOLD_IN_WEIGHT)[k] for k in metrics}
    assert served["ndcg@10"] != sweep(1.0)["ndcg@10"]  # so the line above tells them apart
    # Paired against popularity user by user: the mean is the difference of the means.
    popularity = find(users, method="popularity")
    for identity in ({"given": 3}, {"text": True}):
        d = find(out["vs_popularity"], method="served", **identity)
        gap = find(users, method="served", **identity)["ndcg@10"] - popularity["ndcg@10"]
        assert abs(d["mean"] - gap) < 1e-12 and d["low"] <= d["mean"] <= d["high"]
        assert d["n_users"] == popularity["n_users"] == 4


def test_a_swept_reference_keeps_its_best_weight_and_the_grid_it_came_from() -> None:
    by_weight = {
        w: {"ndcg@10": n, "hr@10": 0.0, "n_users": 1} for w, n in ((1, 0.2), (2, 0.3), (4, 0.1))
    }
    knn = {"method": "item-knn-log-popularity", "draw": "first", "given": 3}
    best = _best_weight(knn, by_weight)
    assert best == {**knn, "weight": 2, "grid": [1, 2, 4], **by_weight[2]}
    assert reference_label(best) == "item-kNN + log popularity, λ 2 (best of 1/2/4 here) (3 liked)"
    drawn = _best_weight({**knn, "draw": RANDOM}, by_weight)
    assert (
        reference_label(drawn)
        == "3 liked at random: item-kNN + log popularity, λ 2 (best of 1/2/4 here)"
    )


def test_best_reference_compares_each_row_with_its_own_popularity() -> None:
    def row(ndcg: float, **identity: object) -> dict[str, object]:
        return {**identity, "ndcg@10": ndcg, "hr@10": 0.0, "n_users": 3}

    knn3 = row(0.48, method="item-knn", draw="first", given=3)  # 1.2x
    knn5 = row(0.8, method="item-knn", draw="first", given=5)  # other row set
    drawn = row(0.3, method="item-knn", draw=RANDOM, given=3)  # 1.5x, its own protocol
    refs = [
        row(0.4, method="popularity", draw="first"),
        knn3,
        row(0.44, method="ease", draw="first", given=3),
        knn5,
        row(0.2, method="popularity", draw=RANDOM, given=3),
        drawn,
        row(0.1, method="popularity", draw="ceiling"),
        row(0.9, method="ease", draw="ceiling"),
    ]
    assert best_reference(refs, given=3) == (knn3, pytest.approx(1.2))
    assert best_reference(refs) == (knn5, pytest.approx(2.0))  # not the ceiling
    assert best_reference(refs, draw=RANDOM) == (drawn, pytest.approx(1.5))
    assert best_reference(refs, text=True) is None


@pytest.mark.parametrize(("served3", "verdict"), [(0.6, "Met"), (0.59, "Not met")])
def test_report_states_the_goals_against_what_was_measured(served3: float, verdict: str) -> None:
    def row(ndcg: float, **identity: object) -> dict[str, object]:
        return {**identity, "ndcg@10": ndcg, "hr@10": 0.0, "n_users": 3}

    refs = [
        row(0.4, method="popularity", draw="first"),
        row(0.46, method="item-knn-log-popularity", draw="first", given=3, weight=4, grid=[1, 4]),
    ]
    served = {"method": "served", "model": "hybrid", "given": 3, "fold_in_weight": 0.2}
    md = coldstart_markdown(
        {
            "created_at": "now",
            "protocol": _protocol(),
            "user_cold_start": {
                "rows": [
                    row(0.4, method="popularity"),
                    row(served3, **served),
                    row(0.44, method="served", model="hybrid", text=True),
                ]
            },
            "user_cold_start_centralized_references": refs,
            "item_cold_start": [row(0.1, method="random")],
            "warm_users": {},
            "timings": {},
        }
    )
    lines = md.split("### Against the goals")[1].splitlines()
    (three,) = [line for line in lines if line.startswith("- From 3 liked items, goal 1.5x")]
    assert f"served {served3 / 0.4:.2f}x popularity" in three and three.endswith(f"{verdict}.")
    assert (
        "best centralized reference 1.15x (item-kNN + log popularity, λ 4 (best of 1/4 here) "
        "(3 liked))" in three
    )
    (text,) = [line for line in lines if line.startswith("- From text alone, goal 1.2x")]
    assert "served 1.10x popularity" in text and text.endswith("Not met.")
    assert "reference" not in text  # no text reference in this report


def test_a_result_keyed_by_display_labels_is_refused_with_its_cause() -> None:
    old = {"protocol": _protocol(), "user_cold_start": {"popularity": {"ndcg@10": 0.1}}}
    with pytest.raises(ValueError, match="re-run `fedrec bench cold-start`"):
        coldstart_markdown(old)
