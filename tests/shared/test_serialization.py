"""The wire format: a stack written row by row and read back without a copy; a message's
weight counted from its records against its protobuf encoding."""

import numpy as np
import pytest
from flwr.app import Array, ConfigRecord, MetricRecord, RecordDict
from flwr.common import ndarray_to_bytes
from flwr.common.serde import recorddict_to_proto

from fedrec.shared.serialization import (
    array_view,
    arrays_to_numpy,
    arrays_view,
    content_bytes,
    numpy_to_arrays,
    stacked_array,
)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((5, 3), np.float32),
        ((4,), np.float32),
        ((2, 3), np.float64),
        ((), np.float32),
        ((3, 0), np.int64),
    ],
)
def test_a_stack_joined_from_its_rows_is_what_np_stack_would_send(
    shape: tuple[int, ...], dtype: type
) -> None:
    rng = np.random.default_rng(0)
    rows = [np.asarray(rng.standard_normal(shape)).astype(dtype) for _ in range(4)]
    if len(shape) == 2:
        rows[1] = np.asfortranarray(rows[1])  # any layout in, C order out
    got, expected = stacked_array(rows), Array(np.stack(rows))
    assert (got.dtype, got.shape, got.stype, got.data) == (
        expected.dtype,
        expected.shape,
        expected.stype,
        expected.data,
    )


def test_rows_of_different_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="share a shape"):
        stacked_array([np.zeros(3, np.float32), np.zeros(4, np.float32)])


def test_a_view_reads_the_record_without_copying_it() -> None:
    rng = np.random.default_rng(1)
    tensors = {
        "c": rng.standard_normal((6, 2)).astype(np.float32),
        "f": np.asfortranarray(rng.standard_normal((3, 4))),
        "s": np.float32(2.5) * np.ones((), np.float32),
    }
    record = numpy_to_arrays(tensors)
    views, decoded = arrays_view(record), arrays_to_numpy(record)
    for name, value in decoded.items():
        np.testing.assert_array_equal(views[name], value)
        assert views[name].dtype == value.dtype and views[name].shape == value.shape
    view = views["c"]
    assert not view.flags.writeable  # a view of the message: nobody writes into it
    assert np.shares_memory(view, np.frombuffer(record["c"].data, np.uint8))


def test_a_payload_that_is_not_np_save_output_is_decoded_as_before() -> None:
    array = Array(np.arange(3, dtype=np.float32))
    array.stype = "custom"
    with pytest.raises(TypeError):
        array_view(array)  # what Array.numpy() says of it


@pytest.mark.parametrize("entries", [10, 200_000])
def test_content_bytes_is_the_encoded_size_but_for_framing(entries: int) -> None:
    masked = np.arange(entries, dtype=np.int64)
    content = RecordDict(
        {
            "arrays": numpy_to_arrays({"cooccurrence": np.zeros(entries, np.float32)}),
            "config": ConfigRecord(
                {"stage": "collect", "n": 3, "f": 0.5, "ok": True, "v": [ndarray_to_bytes(masked)]}
            ),
            "metrics": MetricRecord({"weight": 1.0}),
        }
    )
    counted, encoded = content_bytes(content), recorddict_to_proto(content).ByteSize()
    assert counted >= 12 * entries  # float32 arrays plus the int64 masked vector
    assert counted <= encoded <= counted + 200  # framing: tags, lengths, dtype and shape
