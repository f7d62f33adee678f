"""Cohort messages: packing users onto workers, and one reply record pair per user."""

import numpy as np
import pytest
from flwr.app import ConfigRecord
from hypothesis import given
from hypothesis import strategies as st

from fedrec.shared.cohort_messages import (
    Cohort,
    cohort_of,
    member_replies,
    pack_users,
    reply_content,
)


@given(
    n=st.integers(0, 300),
    workers=st.integers(1, 16),
    per_message=st.integers(0, 50),
)
def test_packing_keeps_every_user_once_in_balanced_groups(
    n: int, workers: int, per_message: int
) -> None:
    users = list(range(100, 100 + n))
    groups = pack_users(users, workers, per_message=per_message)
    # Every user once, in order; no empty group; sizes differ by one at most.
    assert [u for g in groups for u in g] == users
    assert all(groups)
    if n:
        sizes = [len(g) for g in groups]
        assert max(sizes) - min(sizes) <= 1
        expected = workers if per_message == 0 else max(workers, -(-n // per_message))
        assert len(groups) == min(expected, n)
        if per_message and len(groups) > workers:
            assert max(sizes) <= per_message


def test_a_cohort_survives_the_config_record() -> None:
    cohort = Cohort((7, 2, 9), 12)
    config = ConfigRecord({"server-round": 3, **cohort.config()})
    assert cohort_of(config) == cohort
    assert cohort_of(ConfigRecord({"server-round": 3})) is None  # a one-user message


@pytest.mark.parametrize(
    "entries",
    [
        {"cohort-partitions": [1, 1], "cohort-num-partitions": 4},  # twice
        {"cohort-partitions": [4], "cohort-num-partitions": 4},  # outside
        {"cohort-partitions": [], "cohort-num-partitions": 4},  # nobody
        {"cohort-partitions": [1]},  # no partition count
        {"cohort-partitions": ["a"], "cohort-num-partitions": 4},
    ],
)
def test_a_malformed_cohort_is_refused(entries: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="cohort"):
        cohort_of(ConfigRecord(entries))  # type: ignore[arg-type]


def test_each_members_reply_comes_back_under_its_partition_id() -> None:
    q = {3: np.full((2, 2), 3.0, np.float32), 11: np.full((2, 2), 11.0, np.float32)}
    content = reply_content(
        {
            3: ({"item_factors": q[3]}, {"weight": 1.0, "epsilon": 0.5}),
            11: ({"item_factors": q[11]}, {"weight": 1.0, "epsilon": 0.7}),
            5: (None, {"hr@10": 1.0}),  # an evaluation answer: metrics only
        }
    )
    got = member_replies(content)
    assert sorted(got) == [3, 5, 11]
    for pid in (3, 11):
        assert np.array_equal(got[pid].arrays["item_factors"], q[pid])  # type: ignore[index]
    assert got[11].metrics == {"weight": 1.0, "epsilon": 0.7}
    assert got[5].arrays is None and got[5].metrics == {"hr@10": 1.0}


def test_a_member_that_failed_comes_back_as_its_reason() -> None:
    content = reply_content(
        {
            2: ({"item_factors": np.zeros((1, 1), np.float32)}, {"weight": 1.0}),
            4: ({}, {}),
        },
        errors={4: "ValueError: a client with no training interactions cannot train"},
    )
    got = member_replies(content)
    assert got[2].error is None and got[2].arrays is not None
    assert got[4].arrays is None and got[4].error is not None
    assert "no training interactions" in got[4].error
