"""A round's messages with a bounded number in flight (server/messaging.py)."""

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.server.messaging import send_and_receive
from fedrec.shared.config import resolve_config
from fedrec.shared.errors import ConfigError


class FakeGrid:
    """Stores pushed messages; each pull answers up to ``per_pull`` of the asked ones."""

    def __init__(self, per_pull: int, never: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.per_pull, self.never = per_pull, never
        self.stored: dict[str, int] = {}
        self.most_stored = 0
        self.plain_calls = 0

    def push_messages(self, messages: list[int]) -> list[str]:
        ids = []
        for m in messages:
            mid = f"m{m}"
            self.stored[mid] = m
            ids.append(mid)
        self.most_stored = max(self.most_stored, len(self.stored))
        return ids

    def pull_messages(self, ids: set[str]) -> list[Any]:
        ready = [i for i in sorted(ids) if i in self.stored and self.stored[i] not in self.never]
        out = []
        for mid in ready[: self.per_pull]:
            payload = self.stored.pop(mid)
            out.append(
                SimpleNamespace(payload=payload, metadata=SimpleNamespace(reply_to_message_id=mid))
            )
        return out

    def send_and_receive(self, messages: list[int], *, timeout: float | None) -> list[Any]:
        self.plain_calls += 1
        ids = set(self.push_messages(messages))
        out: list[Any] = []
        while ids:
            got = self.pull_messages(ids)
            out += got
            ids -= {r.metadata.reply_to_message_id for r in got}
        return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), window=st.integers(1, 20), per_pull=st.integers(1, 7))
def test_every_message_is_answered_once_and_never_more_than_the_window_is_stored(
    n: int, window: int, per_pull: int
) -> None:
    grid = FakeGrid(per_pull)
    replies = send_and_receive(grid, list(range(n)), timeout=None, max_in_flight=window)  # type: ignore[arg-type]
    assert sorted(r.payload for r in replies) == list(range(n))
    assert grid.most_stored <= window
    # Even a round that fits the window is pulled by fedrec's loop, not at Flower's pace.
    assert grid.plain_calls == 0


def test_window_zero_is_flowers_own_send_and_receive() -> None:
    grid = FakeGrid(per_pull=100)
    replies = send_and_receive(grid, list(range(5)), timeout=None, max_in_flight=0)  # type: ignore[arg-type]
    assert grid.plain_calls == 1 and len(replies) == 5


def test_the_timeout_bounds_the_whole_call_and_keeps_what_arrived() -> None:
    grid = FakeGrid(per_pull=3, never={4})  # message 4's client never answers
    replies = send_and_receive(grid, list(range(10)), timeout=0.3, max_in_flight=2)  # type: ignore[arg-type]
    got = sorted(r.payload for r in replies)
    assert 4 not in got and set(got) <= set(range(10)) and len(got) >= 1


def test_a_negative_window_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max-in-flight"):
        resolve_config({}, {"max-in-flight": -1})
