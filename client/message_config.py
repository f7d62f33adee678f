"""What a server's message says, read from its ConfigRecord: typed values or a clear error.

Every key is named once in :mod:`fedrec.shared.protocol`; a server of another version may
leave some out, and each reader says what it does then.
"""

from __future__ import annotations

from typing import Any

from flwr.app import ConfigRecord

from fedrec.shared import protocol as key
from fedrec.shared.config import FedRecConfig
from fedrec.shared.privacy import UserRound, resolve_delta, share_survivors, user_round_for


def config_int(config: ConfigRecord, name: str, default: int | None = None) -> int:
    """An integer from the server's config record, or a clear error."""
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"server config {name!r} must be an integer, got {value!r}")
    return int(value)


def committed_spans(value: object) -> dict[str, tuple[int, int]] | None:
    """``["token:first:last", ...]`` from the server as {token: (first, last)}."""
    if not isinstance(value, list):
        return None
    spans: dict[str, tuple[int, int]] = {}
    for entry in value:
        parts = str(entry).split(":")
        if len(parts) == 3 and parts[0] and parts[1].isdigit() and parts[2].isdigit():
            spans[parts[0]] = (int(parts[1]), int(parts[2]))
    return spans


def run_id_of(config: ConfigRecord) -> str | None:
    """The run identity the server sends (its RUN_ID; absent from older servers)."""
    value = config.get(key.RUN_ID)
    if value is not None and (not isinstance(value, str) or not value.isalnum()):
        raise ValueError(f"server config 'run-id' must be an alphanumeric token, got {value!r}")
    return value


def asker_of(config: ConfigRecord) -> dict[str, Any]:
    """Which server process asks and where it resumed, as the task's keyword arguments.

    Lets a client that trained a round the server lost roll it back even if not sampled
    for its re-run.
    """
    resumed_from = config.get(key.RESUMED_FROM)
    incarnation = config.get(key.SERVER_INCARNATION)
    return {
        "resumed_from": resumed_from if isinstance(resumed_from, int) else None,
        "incarnation": incarnation if isinstance(incarnation, str) else None,
        "committed": committed_spans(config.get(key.COMMITTED_INCARNATIONS)),
        "run_id": run_id_of(config),
    }


def user_delta_of(config: ConfigRecord) -> float | None:
    """The run's user-level δ as the server sent it (``None``: absent or not a number)."""
    delta = config.get(key.USER_DELTA)
    if isinstance(delta, bool) or not isinstance(delta, int | float):
        return None
    return float(delta)


def user_round_of(cfg: FedRecConfig, config: ConfigRecord, num_partitions: int) -> UserRound | None:
    """This round's user-level ledger entry, at the run's delta (sent by the server)."""
    delta = user_delta_of(config)
    if delta is None or not 0 < delta < 1:
        delta = resolve_delta(cfg.privacy, num_partitions)
    return user_round_for(cfg.privacy, float(delta))


def secagg_survivors(cfg: FedRecConfig, config: ConfigRecord) -> int | None:
    """Under ``user-dp = secagg``: the survivors this client's noise share is sized for.

    SecAgg+'s threshold as the protocol set it up, raised to the run's survivor floor
    (``secagg-min-survivors`` of the round's clients, from this client's own settings) when
    that is higher. Refuses a message that did not come through SecAgg+.
    """
    if cfg.privacy.user_dp != "secagg":
        return None
    counts = []
    for name in (key.SECAGG_MIN_SURVIVORS, key.SECAGG_CLIENTS):
        value = config.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"user-dp=secagg, but this train message did not come through SecAgg+ (no "
                f"{name}); refusing to send an update the server could read"
            )
        counts.append(value)
    threshold, sampled = counts
    return share_survivors(threshold, sampled, cfg.privacy.secagg_min_survivors)
