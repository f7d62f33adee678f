"""Feedback recorded on the device between two rounds trains in the next one.

Issue 18: the newest interactions of each user were always held out, so feedback never
reached training. Here the task layer (what the ClientApp calls) trains on a node's store.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from fedrec.client.dataview import node_client_data
from fedrec.client.localstore import Interaction, NodeStore
from fedrec.client.sealing import write_key_file
from fedrec.client.state import ClientStateStore
from fedrec.client.task import train_round
from fedrec.shared.config import resolve_config
from fedrec.shared.data.catalog import catalog_from_ids
from fedrec.shared.data.catalog_file import catalog_json
from fedrec.shared.models.initial import init_global

ITEMS = [f"m{i}" for i in range(12)]
HISTORY = [("m0", 100), ("m1", 200), ("m2", 300), ("m3", 400), ("m4", 500)]


def _node(root: Path) -> tuple[NodeStore, ClientStateStore]:
    catalog = root.parent / "catalog.json"
    if not catalog.exists():
        catalog.write_text(catalog_json(catalog_from_ids(ITEMS)))
    store = NodeStore(root / "data")
    store.import_catalog(catalog)
    store.record([Interaction("me", item, "rating", 4.0, stamp) for item, stamp in HISTORY])
    state = ClientStateStore(root / "state" / "run-aaaa", write_key_file(root / "state.key"))
    return store, state


@pytest.mark.parametrize(
    "settings",
    [{"dp-enabled": False}, {"reproducible-noise": True}],  # seeded DP noise: comparable runs
    ids=["no-dp", "record-dp"],
)
def test_an_interaction_recorded_between_rounds_changes_the_next_update(
    tmp_path: Path, settings: dict[str, object]
) -> None:
    # Prepare: three identical nodes, each trained for round 1 on the same global model.
    cfg = resolve_config(
        {}, {"embedding-dim": 4, "text-tower": "off", "local-epochs": 2, **settings}
    )
    cpu = torch.device("cpu")
    nodes = {name: _node(tmp_path / name) for name in ("plain", "same", "feedback")}
    start = init_global(cfg, len(ITEMS))

    def train(name: str, rnd: int, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        store, state = nodes[name]
        data = node_client_data(cfg, store)
        reply = train_round(
            cfg, data, tensors, state, server_round=rnd, seed=7, device=cpu, run_id="aaaa"
        )
        assert not reply.refused
        return reply.arrays

    after_one = {name: train(name, 1, start) for name in nodes}

    # Execute: the user likes m9 on one device, between rounds 1 and 2.
    nodes["feedback"][0].record([Interaction("me", "m9", "like", timestamp=10_000)])
    global_two = after_one["plain"]
    after_two = {name: train(name, 2, global_two) for name in nodes}

    # Assert: the newest interaction is training data, and it changed the update -- the
    # liked item's row and the user's private factor -- while an identical node without
    # it reproduces the plain node's update exactly.
    data = node_client_data(cfg, nodes["feedback"][0])
    assert 9 in data.train_items.tolist() and data.test_items.tolist() == [-1]
    for name in after_two["plain"]:
        assert np.array_equal(after_two["same"][name], after_two["plain"][name])
    liked = after_two["feedback"]["item_factors"][9] - global_two["item_factors"][9]
    plain = after_two["plain"]["item_factors"][9] - global_two["item_factors"][9]
    assert not np.allclose(liked, plain)
    factors = {name: nodes[name][1].load().user_factors for name in nodes}  # type: ignore[union-attr]
    assert np.array_equal(factors["same"], factors["plain"])
    assert not np.allclose(factors["feedback"], factors["plain"])
