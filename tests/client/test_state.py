import numpy as np

from fedrec.client.state import ClientState, ClientStateStore


def test_state_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    assert store.load() is None
    state = ClientState(
        user_factors=np.arange(6, dtype=np.float32).reshape(1, 6),
        accountant_history=[(0.8, 0.25, 4)],
        rounds_trained=[1, 3],
        epsilon=2.5,
    )
    store.save(state)
    got = store.load()
    assert got is not None
    assert np.array_equal(got.user_factors, state.user_factors)
    assert got.accountant_history == [(0.8, 0.25, 4)]
    assert got.rounds_trained == [1, 3] and got.epsilon == 2.5
    # No temp files are left behind by the atomic writes.
    assert sorted(p.name for p in (tmp_path / "c0").iterdir()) == [
        "state.json",
        "state.safetensors",
    ]
