"""Simulated users on worker nodes: the server samples users, the workers train them.

In ``fedrec simulate`` with cohorts (``simulation-users-per-message`` not 1) the SuperNodes
are a few workers and the run's users are partitions of the data set. The strategy samples
*users* here exactly as FedAvg samples nodes (uniform, ``int(N * fraction)`` of them but at
least the minimum, without replacement), packs them into messages, at least one per worker
(:func:`fedrec.shared.cohort_messages.pack_users`; :data:`MAX_REPLY_BYTES`), and turns
each worker's reply back into one :class:`~fedrec.server.rounds.Reply` per user, whose
``node`` is the user's partition id. A worker message that failed or never came back
stands for each of its members.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict

from fedrec.server.rounds import Reply
from fedrec.shared.cohort_messages import Cohort, cohort_of, member_replies, pack_users
from fedrec.shared.errors import ConfigError

# A worker's train reply holds the model of every user it trained, and is copied on its way
# (serialised, Ray's object store, the server's receipt): one message per worker would make
# each worker's memory grow with the federation. Unless a cap is set, train messages hold
# at most as many users as keep a reply within this many bytes of models.
MAX_REPLY_BYTES = 16 * 2**20


@dataclass(frozen=True)
class SimulatedUsers:
    """A simulation whose ``workers`` nodes train ``num_users`` users between them."""

    num_users: int
    workers: int
    # At most this many users per message; 0: as few messages as keep each train reply
    # within MAX_REPLY_BYTES (one per worker where that fits).
    per_message: int = 0

    def __post_init__(self) -> None:
        if self.num_users < 1 or self.workers < 1:
            raise ValueError(
                f"need users and workers, got {self.num_users} users, {self.workers} workers"
            )

    def sample(
        self, fraction: float, minimum: int, *, excluded: Collection[object] = ()
    ) -> list[int]:
        """FedAvg's sample, over users: ``int(N * fraction)``, at least ``minimum``."""
        available = [u for u in range(self.num_users) if u not in excluded]
        size = max(int(len(available) * fraction), minimum)
        if size > len(available):
            raise ConfigError(
                f"a round needs at least {minimum} users (min-train-nodes) and the simulation "
                f"has {len(available)} that can train; lower min-train-nodes"
            )
        return sorted(random.sample(available, size))

    def users_per_message(self, arrays: ArrayRecord, message_type: str) -> int:
        """The cap on a message's users: ``per_message``, else the reply's byte budget.

        0 (no cap) for evaluation messages, whose replies hold metrics only.
        """
        if self.per_message or message_type != MessageType.TRAIN:
            return self.per_message
        model_bytes = sum(len(array.data) for array in arrays.values())
        return max(1, MAX_REPLY_BYTES // max(model_bytes, 1))

    def messages(
        self,
        users: Sequence[int],
        arrays: ArrayRecord,
        config: ConfigRecord,
        node_ids: Sequence[int],
        message_type: str,
    ) -> list[Message]:
        """One message per group of ``users``, the groups dealt out over ``node_ids``."""
        groups = pack_users(
            users, len(node_ids), per_message=self.users_per_message(arrays, message_type)
        )
        out = []
        for i, group in enumerate(groups):
            cohort = Cohort(tuple(group), self.num_users)
            record = RecordDict(
                {"arrays": arrays, "config": ConfigRecord({**dict(config), **cohort.config()})}
            )
            node = node_ids[i % len(node_ids)]
            out.append(Message(content=record, message_type=message_type, dst_node_id=node))
        return out


def members_of(messages: Sequence[Message]) -> dict[str, list[int]]:
    """Who each sent message is for, by its id (Flower sets ids on push)."""
    out = {}
    for m in messages:
        cohort = cohort_of(m.content.config_records["config"])
        if m.metadata.message_id and cohort is not None:
            out[m.metadata.message_id] = list(cohort.partitions)
    return out


def user_replies(message: Message, members: Sequence[int], error: str | None) -> list[Reply]:
    """One reply per member of the worker message ``message`` answers.

    ``error``: why the worker's message failed (then every member failed). A member the
    worker's reply says nothing about failed too.
    """
    if error is not None:
        return [Reply(pid, None, error=error) for pid in members]
    got = member_replies(message.content)
    out = []
    for pid in members:
        member = got.get(pid)
        if member is None:
            out.append(Reply(pid, None, error="the worker's reply holds nothing for this user"))
        elif member.error is not None:
            out.append(Reply(pid, None, error=member.error))
        else:
            out.append(Reply(pid, member.arrays, member.metrics))
    return out


def evaluate_records(replies: Sequence[Reply]) -> list[RecordDict]:
    """The members' evaluation metrics, one record each, as one-user clients send them."""
    return [
        RecordDict({"metrics": MetricRecord(dict(r.metrics))}) for r in replies if r.error is None
    ]
