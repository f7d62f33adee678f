"""Global tensors <-> Flower ``ArrayRecord`` (the wire format between server and clients)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord


def numpy_to_arrays(tensors: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Named numpy arrays as an ``ArrayRecord`` (dense: every row is sent)."""
    return ArrayRecord({name: Array(np.ascontiguousarray(t)) for name, t in tensors.items()})


def arrays_to_numpy(record: ArrayRecord) -> dict[str, np.ndarray]:
    """An ``ArrayRecord`` back to named numpy arrays."""
    return {name: array.numpy() for name, array in record.items()}
