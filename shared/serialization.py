"""Global tensors <-> Flower ``ArrayRecord`` (the wire format between server and clients)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from flwr.app import Array, ArrayRecord, RecordDict

# Flower's Array.stype of an ``np.save`` payload.
NUMPY_STYPE = "numpy.ndarray"


def numpy_to_arrays(tensors: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Named numpy arrays as an ``ArrayRecord`` (dense: every row is sent)."""
    return ArrayRecord({name: Array(np.ascontiguousarray(t)) for name, t in tensors.items()})


def arrays_to_numpy(record: ArrayRecord) -> dict[str, np.ndarray]:
    """An ``ArrayRecord`` back to named numpy arrays."""
    return {name: array.numpy() for name, array in record.items()}


def array_view(array: Array) -> np.ndarray:
    """``array.numpy()`` without the copy: a read-only view of the message's own bytes.

    A server holding a round's replies would otherwise keep every update twice (the
    message's bytes and the decoded copy). Payloads that are not plain ``np.save`` output
    are decoded the ordinary way.
    """
    data = array.data
    if array.stype != NUMPY_STYPE or not isinstance(data, bytes):
        return array.numpy()
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        return array.numpy()
    if dtype.hasobject:
        return array.numpy()  # refused there: never unpickle a payload
    count = int(np.prod(shape, dtype=np.int64))
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
    return flat.reshape(shape, order="F" if fortran else "C")


def arrays_view(record: ArrayRecord) -> dict[str, np.ndarray]:
    """:func:`arrays_to_numpy` as read-only views of the record's bytes (:func:`array_view`)."""
    return {name: array_view(array) for name, array in record.items()}


def stacked_array(rows: Sequence[np.ndarray]) -> Array:
    """``Array(np.stack(rows))``, the same bytes, written once.

    ``np.stack`` then ``np.save`` would hold the rows, the stack and its serialisation at
    once; here the payload is joined straight from the rows.
    """
    first = np.asarray(rows[0])
    shape = (len(rows), *first.shape)
    header = io.BytesIO()
    descr = np.lib.format.dtype_to_descr(first.dtype)
    fields = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(header, fields)
    parts: list[bytes | memoryview] = [header.getvalue()]
    for row in rows:
        value = np.asarray(row, dtype=first.dtype)
        if value.shape != first.shape:
            raise ValueError(f"rows of one stack must share a shape: {value.shape} vs {shape[1:]}")
        parts.append(np.ascontiguousarray(value).reshape(-1).data.cast("B"))
    return Array(dtype=str(first.dtype), shape=shape, stype=NUMPY_STYPE, data=b"".join(parts))


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
