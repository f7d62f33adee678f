"""A message content's weight, counted from its records, against its protobuf encoding."""

import numpy as np
import pytest
from flwr.app import ConfigRecord, MetricRecord, RecordDict
from flwr.common import ndarray_to_bytes
from flwr.common.serde import recorddict_to_proto

from fedrec.shared.serialization import content_bytes, numpy_to_arrays


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
