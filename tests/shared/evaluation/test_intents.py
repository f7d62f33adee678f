"""Text intents: the rules, the shipped query set, and the metrics of an answer."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedrec.shared.config import default_config
from fedrec.shared.data import load_dataset
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.evaluation.intents import Intent, intent_metrics, load_intents

GENRES = ["Action", "Comedy", "Drama", "Romance", "Sci-Fi"]


def _catalog() -> ItemCatalog:
    titles = ["Alien (1979)", "Annie Hall (1977)", "Heat (1995)", "Batman (1989)", "Untitled"]
    genres = [["Sci-Fi", "Action"], ["Comedy", "Romance"], ["Action"], ["Action"], ["Drama"]]
    return ItemCatalog(
        raw_ids=[str(i) for i in range(5)], titles=titles, genres=genres, texts=titles
    )


def test_each_field_of_a_rule_must_hold() -> None:
    cat = _catalog()
    assert Intent("q", any=["Action"]).relevant(cat).tolist() == [1, 0, 1, 1, 0]
    assert Intent("q", all=["Comedy", "Romance"]).relevant(cat).tolist() == [0, 1, 0, 0, 0]
    assert Intent("q", any=["Action"], none=["Sci-Fi"]).relevant(cat).tolist() == [0, 0, 1, 1, 0]
    seventies = Intent("q", year_min=1970, year_max=1979)
    assert seventies.relevant(cat).tolist() == [1, 1, 0, 0, 0]  # "Untitled" has no year
    assert Intent("q", title=["batman"]).relevant(cat).tolist() == [0, 0, 0, 1, 0]
    assert not Intent("q", title=["Bat"]).relevant(cat).any()  # whole words only


@given(
    genres=st.lists(st.sampled_from(GENRES), unique=True),
    wanted=st.lists(st.sampled_from(GENRES), min_size=1, unique=True),
    banned=st.lists(st.sampled_from(GENRES), unique=True),
)
def test_any_and_none_are_set_rules(
    genres: list[str], wanted: list[str], banned: list[str]
) -> None:
    intent = Intent("q", any=tuple(wanted), none=tuple(banned))
    expected = bool(set(genres) & set(wanted)) and not set(genres) & set(banned)
    assert intent.matches("X (1990)", genres) == expected


def test_a_rule_that_admits_everything_or_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no rule"):
        Intent("q")
    with pytest.raises(ValueError, match="year_min > year_max"):
        Intent("q", year_min=1990, year_max=1980)


def test_bad_intent_files_are_refused_with_their_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[intent]]\nquery = "x"\ngenre = ["Action"]\n')
    with pytest.raises(ValueError, match="intent 1: unknown fields"):
        load_intents(bad)
    bad.write_text('[[intent]]\nquery = "x"\nany = ["A"]\n[[intent]]\nquery = "x"\nany = ["B"]\n')
    with pytest.raises(ValueError, match="twice"):
        load_intents(bad)
    bad.write_text("[[intent]\n")
    with pytest.raises(ValueError, match="cannot read"):
        load_intents(bad)


def test_the_shipped_query_set_is_answerable_on_movielens() -> None:
    intents = load_intents()
    assert len(intents) >= 40
    catalog = load_dataset(default_config().data).items
    sizes = [int(i.relevant(catalog).sum()) for i in intents]
    assert min(sizes) >= 3, [i.query for i, n in zip(intents, sizes, strict=True) if n < 3]
    # no rule is so loose that a random list would mostly pass it
    assert max(sizes) < 0.5 * len(catalog), [
        i.query for i, n in zip(intents, sizes, strict=True) if n > 800
    ]


def test_precision_popularity_and_diversity_of_answers() -> None:
    cat = _catalog()
    intents = [Intent("action", any=["Action"]), Intent("nothing", title=["Zzz"])]
    counts = np.array([50, 40, 30, 20, 10])
    out = intent_metrics(intents, lambda i: np.array([0, 1, 2]), cat, counts, k=3)
    assert out["intents"] == 1 and out["unanswerable"] == 1
    assert out["precision@3"] == pytest.approx(2 / 3)
    assert out["mean_pop_rank@3"] == pytest.approx(2.0)  # ranks 1, 2, 3
    assert 0 < out["ild_genres@3"] <= 1


def test_the_new_items_file_parses_and_its_queries_are_paraphrases(tmp_path) -> None:
    from fedrec.shared.evaluation.intents import load_new_items

    items = load_new_items()
    assert len(items) >= 10 and len({it.id for it in items}) == len(items)
    for it in items:  # a paraphrase, not the description copied
        assert it.query.lower() not in it.description.lower()
    (tmp_path / "bad.toml").write_text('[[item]]\nid = "x"\ntitle = "X"\n')
    with pytest.raises(ValueError, match="missing"):
        load_new_items(tmp_path / "bad.toml")
