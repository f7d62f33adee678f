"""Global tensors <-> Flower ``ArrayRecord`` (the wire format between server and clients)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, RecordDict


def numpy_to_arrays(tensors: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Named numpy arrays as an ``ArrayRecord`` (dense: every row is sent)."""
    return ArrayRecord({name: Array(np.ascontiguousarray(t)) for name, t in tensors.items()})


def arrays_to_numpy(record: ArrayRecord) -> dict[str, np.ndarray]:
    """An ``ArrayRecord`` back to named numpy arrays."""
    return {name: array.numpy() for name, array in record.items()}


def _value_bytes(value: object) -> int:
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return sum(_value_bytes(v) for v in value)
    return 1 if isinstance(value, bool) else 8  # an int or a float


def content_bytes(content: RecordDict) -> int:
    """The bytes a message's content carries: array data, bytes, strings, 8 per number.

    What a message weighs on the wire without the protocol's own framing (field tags,
    lengths, the message's metadata), which adds a few bytes per value; counted from the
    records themselves, so it costs no serialization.
    """
    total = 0
    for name, record in content.items():
        total += len(name.encode())
        for key, value in record.items():
            total += len(key.encode())
            total += len(value.data) if isinstance(value, Array) else _value_bytes(value)
    return total
