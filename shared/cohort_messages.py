"""Cohort messages: several simulated users in one Flower message, one reply for all of them.

With cohorts, ``fedrec simulate``'s SuperNodes are *workers*, not users. The server samples
users and packs them onto the workers (:func:`pack_users`); each worker's message names its
members in the config record (:class:`Cohort`: ``cohort-partitions``, the partition ids, and
``cohort-num-partitions``, how many partitions the data set is cut into). The worker replies
with one MetricRecord per member (``metrics.<partition id>``) and the members' tensors
stacked: one ArrayRecord per group of members whose tensors have the same names and shapes
(``stacked.<group>``, member ``k`` at index ``k`` of every array), its partition ids beside
it (``stacked-ids.<group>``) -- a few large arrays serialise far faster than one small
record per member. A member that failed sends its reason (``error.<partition id>``). The
server splits the reply back into one answer per user (:func:`member_replies`), so its
round rules see what one user per node would have sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import ConfigError
from fedrec.shared.protocol import COHORT_NUM_PARTITIONS, COHORT_PARTITIONS
from fedrec.shared.serialization import arrays_view, stacked_array

STACKED_PREFIX = "stacked."
STACKED_IDS_PREFIX = "stacked-ids."
METRICS_PREFIX = "metrics."
ERROR_PREFIX = "error."


@dataclass(frozen=True)
class Cohort:
    """The simulated users one worker message is for: partitions of ``num_partitions``."""

    partitions: tuple[int, ...]
    num_partitions: int

    def __post_init__(self) -> None:
        if not self.partitions:
            raise ValueError("a cohort needs at least one partition id")
        if self.num_partitions < 1:
            raise ValueError(f"{COHORT_NUM_PARTITIONS} must be >= 1, got {self.num_partitions}")
        if len(set(self.partitions)) != len(self.partitions):
            raise ValueError(f"{COHORT_PARTITIONS} names a partition twice: {self.partitions}")
        outside = [p for p in self.partitions if not 0 <= p < self.num_partitions]
        if outside:
            raise ValueError(f"{COHORT_PARTITIONS} {outside} outside 0..{self.num_partitions - 1}")

    def config(self) -> dict[str, list[int] | int]:
        """The entries that make a message's config record a cohort's."""
        return {
            COHORT_PARTITIONS: list(self.partitions),
            COHORT_NUM_PARTITIONS: self.num_partitions,
        }


def check_cohorts_allowed(cfg: FedRecConfig) -> None:
    """Refuse settings under which members cannot share a worker call.

    Under ``user-dp = secagg`` every user is a party of SecAgg+ with its own masks and
    noise share: a cohort would be one party, so its members' updates would be summed
    before the secure sum and its dropout would drop them all.
    """
    if cfg.privacy.user_dp == "secagg":
        raise ConfigError(
            "cohorts (several simulated users per worker call) cannot run user-dp=secagg: "
            "each user must be its own SecAgg+ party; simulate one user per node instead"
        )


def _ints(value: object, name: str) -> list[int]:
    items = value if isinstance(value, list) else [value]
    out = [v for v in items if isinstance(v, int) and not isinstance(v, bool)]
    if len(out) != len(items):
        raise ValueError(f"server config {name!r} must hold integers, got {value!r}")
    return out


def cohort_of(config: ConfigRecord) -> Cohort | None:
    """The cohort a message's config names, or ``None`` for a one-user message."""
    if COHORT_PARTITIONS not in config:
        return None
    partitions = _ints(config[COHORT_PARTITIONS], COHORT_PARTITIONS)
    num = _ints(config.get(COHORT_NUM_PARTITIONS), COHORT_NUM_PARTITIONS)
    if len(num) != 1:
        raise ValueError(f"server config {COHORT_NUM_PARTITIONS!r} must be one integer")
    return Cohort(tuple(partitions), num[0])


def pack_users(users: Sequence[int], workers: int, *, per_message: int = 0) -> list[list[int]]:
    """``users`` in balanced consecutive groups, one message each.

    One group per worker (``per_message`` 0), or as many as keep each group within
    ``per_message`` users, never fewer than the workers (they would idle); group sizes
    differ by one at most. Never an empty group.
    """
    if workers < 1:
        raise ValueError(f"need at least one worker, got {workers}")
    if not users:
        return []
    groups = workers if per_message <= 0 else max(workers, -(-len(users) // per_message))
    groups = min(groups, len(users))
    size, extra = divmod(len(users), groups)
    out, start = [], 0
    for g in range(groups):
        end = start + size + (1 if g < extra else 0)
        out.append([int(u) for u in users[start:end]])
        start = end
    return out


@dataclass(frozen=True)
class MemberReply:
    """One member's part of a worker's reply: its tensors (train only) and its metrics."""

    arrays: dict[str, np.ndarray] | None
    metrics: dict[str, float]
    error: str | None = None  # the member could not train: why (its worker's others did)


def reply_content(
    members: Mapping[int, tuple[Mapping[str, np.ndarray] | None, Mapping[str, float]]],
    errors: Mapping[int, str] | None = None,
) -> RecordDict:
    """A worker's reply: per partition id, its tensors (if any) and its metrics.

    A member in ``errors`` failed on its own: its reason is sent instead of a reply.
    """
    errors = errors or {}
    content = RecordDict()
    for pid, reason in errors.items():
        content[f"{ERROR_PREFIX}{pid}"] = ConfigRecord({"reason": str(reason)})
    groups: dict[tuple[tuple[str, tuple[int, ...], str], ...], list[int]] = {}
    for pid, (arrays, metrics) in members.items():
        if pid in errors:
            continue
        content[f"{METRICS_PREFIX}{pid}"] = MetricRecord(dict(metrics))
        if arrays is not None:
            signature = tuple(
                (name, tuple(np.shape(a)), str(np.asarray(a).dtype)) for name, a in arrays.items()
            )
            groups.setdefault(signature, []).append(pid)
    for g, (signature, pids) in enumerate(groups.items()):
        content[f"{STACKED_PREFIX}{g}"] = ArrayRecord(
            {
                name: stacked_array([members[pid][0][name] for pid in pids])  # type: ignore[index]
                for name, _, _ in signature
            }
        )
        content[f"{STACKED_IDS_PREFIX}{g}"] = ConfigRecord({"partitions": list(pids)})
    return content


def _pid(key: str, prefix: str) -> int | None:
    rest = key[len(prefix) :]
    return int(rest) if key.startswith(prefix) and rest.isdigit() else None


def member_replies(content: RecordDict) -> dict[int, MemberReply]:
    """Each member's reply in a worker's reply, by partition id (members with metrics)."""
    arrays: dict[int, dict[str, np.ndarray]] = {}
    for key, record in content.array_records.items():
        g = key[len(STACKED_PREFIX) :] if key.startswith(STACKED_PREFIX) else None
        ids = content.config_records.get(f"{STACKED_IDS_PREFIX}{g}") if g is not None else None
        if ids is None:
            continue
        pids = _ints(ids.get("partitions", []), "partitions")
        # Views of the reply's bytes: a server holding a round's replies holds them once.
        stacked = arrays_view(record)
        if any(len(v) != len(pids) for v in stacked.values()):
            raise ValueError(f"a worker's {key} does not hold one row per member")
        for k, member in enumerate(pids):
            arrays[member] = {name: value[k] for name, value in stacked.items()}
    out: dict[int, MemberReply] = {}
    for key, config in content.config_records.items():
        failed = _pid(key, ERROR_PREFIX)
        if failed is not None:
            out[failed] = MemberReply(None, {}, error=str(config.get("reason", "failed")))
    for key, metric_record in content.metric_records.items():
        answered = _pid(key, METRICS_PREFIX)
        if answered is not None:
            metrics = {k: float(v) for k, v in metric_record.items()}  # type: ignore[arg-type]
            out[answered] = MemberReply(arrays.get(answered), metrics)
    return out
