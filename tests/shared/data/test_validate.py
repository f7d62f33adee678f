from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedrec.shared.data.validate import check_duplicate_pairs, index_ids, lookup_ids
from fedrec.shared.errors import DataError


def test_index_ids_numeric_text_and_mixed() -> None:
    raw, idx = index_ids(np.array([10, 2, 10, 1]))
    assert (raw, idx.tolist()) == (["1", "2", "10"], [2, 1, 2, 0])

    raw, idx = index_ids(np.array(["10", "2", "10", "1"]))
    assert (raw, idx.tolist()) == (["1", "2", "10"], [2, 1, 2, 0])

    raw, idx = index_ids(np.array(["b", "10", "a", "2"]))
    assert (raw, idx.tolist()) == (["10", "2", "a", "b"], [3, 0, 2, 1])


@given(st.lists(st.integers(-50, 50), min_size=1, max_size=60))
def test_index_ids_matches_brute_force(values: list[int]) -> None:
    raw, idx = index_ids(np.array([str(v) for v in values]))

    expected = sorted(set(values))
    assert raw == [str(v) for v in expected]
    assert [expected[k] for k in idx.tolist()] == values


def test_lookup_ids_reports_first_unknown_row() -> None:
    with pytest.raises(DataError) as info:
        lookup_ids(
            np.array([1, 9, 2, 9, 8]),
            {"1": 0, "2": 1},
            np.array([2, 3, 4, 5, 6]),
            path="r.csv",
            column="item",
            missing_hint="the items file",
        )

    assert (info.value.path, info.value.line, info.value.column) == ("r.csv", 3, "item")
    assert "item 9" in str(info.value)
    assert "2 unknown id(s) on 3 row(s)" in str(info.value)


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=40))
def test_duplicate_pairs_found_exactly_when_present(pairs: list[tuple[int, int]]) -> None:
    users = np.array([u for u, _ in pairs])
    items = np.array([i for _, i in pairs])
    lines = np.arange(1, len(pairs) + 1)
    kwargs = {"path": "p", "user_raw": [str(k) for k in range(5)], "item_raw": list("abcde")}

    first_repeat = next((n for n in range(len(pairs)) if pairs[n] in pairs[:n]), None)
    if first_repeat is None:
        check_duplicate_pairs(users, items, lines, **kwargs)
    else:
        with pytest.raises(DataError) as info:
            check_duplicate_pairs(users, items, lines, **kwargs)
        assert info.value.line == first_repeat + 1
        n_dup = len(pairs) - len(set(pairs))
        assert f"{n_dup} duplicate" in str(info.value)
