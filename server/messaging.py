"""Sending a round's messages with a bounded number in flight.

Flower 1.42's in-memory LinkState (the simulation engine's, and a SuperLink's default)
finds a node's next message by scanning every stored message, and the simulation engine
asks for every node in turn: a sweep costs (nodes x stored messages), run continuously by a
thread of the server process that competes with the client actors for the cores. Keeping
at most ``max-in-flight`` messages stored at a time bounds each sweep to (nodes x
max-in-flight); new messages are pushed as replies arrive, so the clients stay busy. The
replies are the same as with ``send_and_receive``. The profile and the round times with and
without the window are in docs/benchmarks/README.md ("Reading federation.md"). SecAgg+'s
four stages go through it too (:mod:`fedrec.server.secagg`): Flower's workflow would send
each stage to every client at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from flwr.app import Message
from flwr.serverapp import Grid

POLL_SECONDS = 0.02  # how often replies are pulled while messages are in flight


def send_and_receive(
    grid: Grid,
    messages: Iterable[Message],
    *,
    timeout: float | None,
    max_in_flight: int = 0,
) -> list[Message]:
    """Push ``messages`` and collect their replies, at most ``max_in_flight`` outstanding.

    ``max_in_flight`` 0 is Flower's own ``grid.send_and_receive``. Otherwise replies are
    pulled every ``POLL_SECONDS`` even when every message fits the window: Flower's
    in-memory grid waits a tenth of a second between pulls, a fixed cost on every short
    round of a simulation. ``timeout`` bounds the whole call, as there: messages still
    unsent or unanswered when it expires get no reply (the strategy counts them as timed
    out).
    """
    pending = list(messages)
    if max_in_flight <= 0:
        return list(grid.send_and_receive(pending, timeout=timeout))
    if not pending:
        return []
    deadline = None if timeout is None else time.monotonic() + timeout
    in_flight: set[str] = set()
    replies: list[Message] = []
    sent = 0
    while True:
        room = max_in_flight - len(in_flight)
        if sent < len(pending) and room > 0:
            batch = pending[sent : sent + room]
            in_flight.update(grid.push_messages(batch))
            sent += len(batch)
        got = list(grid.pull_messages(in_flight)) if in_flight else []
        replies += got
        in_flight.difference_update(m.metadata.reply_to_message_id for m in got)
        if sent >= len(pending) and not in_flight:
            return replies
        if deadline is not None and time.monotonic() >= deadline:
            return replies
        if not got:
            time.sleep(POLL_SECONDS)
