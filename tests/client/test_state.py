import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from fedrec.client.dataview import ClientData
from fedrec.client.state import ClientState, ClientStateError, ClientStateStore
from fedrec.client.task import local_train
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.models.initial import init_shared


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
    # One sealed file, no temp files left behind; the witness and key live beside the folder.
    assert [p.name for p in (tmp_path / "c0").iterdir()] == ["state.sealed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c0", "state.key", "witness"]


# --------------------------------------------------------------------- resume: lost rounds


def _state(
    rounds: list[int], *, fill: float, history: int = 0, incarnation: str | None = None
) -> ClientState:
    """A synthetic state: factors filled with ``fill``, ``history`` DP rounds of 10 steps."""
    return ClientState(
        user_factors=np.full((2, 4), fill, dtype=np.float32),
        accountant_history=[(1.0, 0.1, 10 * history)] if history else [],
        rounds_trained=rounds,
        epsilon=0.5 * history,
        incarnation=incarnation,
    )


def test_previous_state_is_kept_in_the_same_atomic_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    before, after = _state([1, 2], fill=2.0, history=2), _state([1, 2, 3], fill=3.0, history=3)
    store.save(after, previous=before)
    got, prev = store.load(), store.load_previous()
    assert got is not None and prev is not None
    assert got.rounds_trained == [1, 2, 3] and np.all(got.user_factors == 3.0)
    assert prev.rounds_trained == [1, 2] and np.all(prev.user_factors == 2.0)
    assert prev.accountant_history == [(1.0, 0.1, 20)]
    assert got.discarded_rounds == []
    # Still one file: the snapshot travels inside the one sealed file that is replaced.
    assert [p.name for p in (tmp_path / "c0").iterdir()] == ["state.sealed"]


def test_start_round_is_the_saved_state_for_a_new_round(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    assert store.start_round(1) is None
    store.save(_state([1, 2], fill=2.0, history=2), previous=_state([1], fill=1.0, history=1))
    start = store.start_round(3)
    assert start is not None
    assert start.rounds_trained == [1, 2] and np.all(start.user_factors == 2.0)
    assert start.discarded_rounds == []
    # A client not sampled for a while simply continues from its latest round.
    start = store.start_round(7)
    assert start is not None and start.rounds_trained == [1, 2]


def test_a_round_asked_for_again_starts_from_the_state_before_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    # Trained round 3, but the server died before checkpointing it and now asks again.
    store.save(_state([1, 2, 3], fill=3.0, history=3), previous=_state([1, 2], fill=2.0, history=2))
    start = store.start_round(3)
    assert start is not None
    assert np.all(start.user_factors == 2.0) and start.rounds_trained == [1, 2]
    # The lost run's DP steps stay spent: its update may have reached the server.
    assert start.accountant_history == [(1.0, 0.1, 30)] and start.epsilon == 1.5
    assert start.discarded_rounds == [3]
    # Deciding is read-only: asking again (a crash before training finished) gives the same.
    again = store.start_round(3)
    assert again is not None and again.discarded_rounds == [3]
    assert np.array_equal(again.user_factors, start.user_factors)


def test_a_round_lost_twice_is_rolled_back_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    store.save(_state([1, 2, 3], fill=3.0, history=3), previous=_state([1, 2], fill=2.0, history=2))
    start = store.start_round(3)
    assert start is not None
    # The re-run trains round 3 (saving where it started) and the server dies again.
    retrained = ClientState(
        user_factors=np.full((2, 4), 3.5, dtype=np.float32),
        accountant_history=[(1.0, 0.1, 40)],
        rounds_trained=start.rounds_trained + [3],
        epsilon=2.0,
        discarded_rounds=start.discarded_rounds,
    )
    store.save(retrained, previous=start)
    third = store.start_round(3)
    assert third is not None
    assert np.all(third.user_factors == 2.0) and third.rounds_trained == [1, 2]
    assert third.accountant_history == [(1.0, 0.1, 40)] and third.epsilon == 2.0
    assert third.discarded_rounds == [3, 3]


def test_a_lost_first_round_rolls_back_to_the_initial_factors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    store.save(_state([1], fill=1.0, history=1), previous=_state([], fill=0.0))
    start = store.start_round(1)
    assert start is not None
    assert start.rounds_trained == [] and np.all(start.user_factors == 0.0)
    assert start.discarded_rounds == [1] and start.epsilon == 0.5


@pytest.mark.parametrize(
    "previous",
    [None, _state([1, 2, 3], fill=3.0, history=3), _state([1, 5], fill=5.0, history=2)],
    ids=["no-snapshot", "snapshot-too-new", "snapshot-not-a-prefix"],
)
def test_a_state_that_cannot_be_rolled_back_is_refused(tmp_path, previous) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    store.save(_state([1, 2, 3, 4], fill=4.0, history=4), previous=previous)
    with pytest.raises(ClientStateError, match="asks for round 3"):
        store.start_round(3)


def test_an_unsealed_state_of_an_earlier_version_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Plaintext cannot be told apart from an edited file, so it is never read.
    folder = tmp_path / "c0"
    folder.mkdir()
    save_file(
        {"user_factors": np.ones((1, 3), dtype=np.float32)}, str(folder / "state.safetensors")
    )
    (folder / "state.json").write_text(
        json.dumps({"accountant_history": [[1.0, 0.1, 5]], "rounds_trained": [1], "epsilon": 0.3})
    )
    store = ClientStateStore(folder)
    with pytest.raises(ClientStateError, match="unsealed state of an earlier fedrec version"):
        store.load()
    with pytest.raises(ClientStateError):
        store.start_round(2)


# ------------------------------- resume: a lost round of a client not sampled for its re-run


def _lost_round_3(store: ClientStateStore, *, incarnation: str | None = "A") -> None:
    """Trained round 3 for server process ``incarnation``, which died before checkpoint 3."""
    store.save(
        _state([1, 2, 3], fill=3.0, history=3, incarnation=incarnation),
        previous=_state([1, 2], fill=2.0, history=2, incarnation=incarnation),
    )


def test_the_server_incarnation_is_saved_with_the_state(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    _lost_round_3(store)
    got, prev = store.load(), store.load_previous()
    assert got is not None and prev is not None
    assert got.incarnation == "A" and prev.incarnation == "A"


@pytest.mark.parametrize("lost_for", ["A", None], ids=["other-incarnation", "older-server"])
def test_a_lost_round_is_rolled_back_when_the_client_missed_its_re_run(  # type: ignore[no-untyped-def]
    tmp_path, lost_for
) -> None:
    store = ClientStateStore(tmp_path / "c0")
    _lost_round_3(store, incarnation=lost_for)
    # Server process B resumed from checkpoint 2, ran round 3 without this client and now
    # asks it for round 5: round 3 was trained for a server that never checkpointed it.
    start = store.start_round(5, resumed_from=3, incarnation="B")
    assert start is not None
    assert np.all(start.user_factors == 2.0) and start.rounds_trained == [1, 2]
    assert start.incarnation == lost_for  # the restored state's own latest round (2)
    # Its DP steps stay spent.
    assert start.accountant_history == [(1.0, 0.1, 30)] and start.epsilon == 1.5
    assert start.discarded_rounds == [3]
    # Read-only: asking again gives the same.
    again = store.start_round(5, resumed_from=3, incarnation="B")
    assert again is not None and again.rounds_trained == [1, 2] and again.discarded_rounds == [3]


def test_a_round_of_this_server_incarnation_is_not_rolled_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    _lost_round_3(store, incarnation="B")  # round 3 was trained for B itself: not lost
    start = store.start_round(5, resumed_from=3, incarnation="B")
    assert start is not None
    assert np.all(start.user_factors == 3.0) and start.rounds_trained == [1, 2, 3]
    assert start.discarded_rounds == [] and start.incarnation == "B"


def test_rounds_before_the_resumed_round_are_checkpointed_and_kept(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    _lost_round_3(store, incarnation="A")
    # B resumed from checkpoint 3: A's round 3 was checkpointed, whoever trained it.
    start = store.start_round(5, resumed_from=4, incarnation="B")
    assert start is not None and start.rounds_trained == [1, 2, 3]
    assert start.discarded_rounds == []


@pytest.mark.parametrize(
    "keys",
    [{}, {"resumed_from": 3}, {"incarnation": "B"}],
    ids=["none", "resumed-from-only", "incarnation-only"],
)
def test_without_the_server_keys_only_a_repeated_round_is_rolled_back(tmp_path, keys) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    _lost_round_3(store)
    start = store.start_round(5, **keys)
    assert start is not None and start.rounds_trained == [1, 2, 3]
    assert start.discarded_rounds == [] and np.all(start.user_factors == 3.0)
    repeated = store.start_round(3, **keys)
    assert repeated is not None and repeated.rounds_trained == [1, 2]
    assert repeated.discarded_rounds == [3]


def test_a_server_that_crashes_twice_in_the_same_round(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    _lost_round_3(store, incarnation="A")
    # B resumed from checkpoint 2 and sampled this client for round 3 again: rolled back,
    # trained round 3 for B (saving where it started) -- then B died in round 3 as well.
    start = store.start_round(3, resumed_from=3, incarnation="B")
    assert start is not None and start.discarded_rounds == [3]
    store.save(
        ClientState(
            user_factors=np.full((2, 4), 3.5, dtype=np.float32),
            accountant_history=[(1.0, 0.1, 40)],
            rounds_trained=start.rounds_trained + [3],
            epsilon=2.0,
            discarded_rounds=start.discarded_rounds,
            incarnation="B",
        ),
        previous=start,
    )
    # C resumed from checkpoint 2 too (same round, another token), ran round 3 without
    # this client and asks it for round 4: B's round 3 is lost as well.
    start = store.start_round(4, resumed_from=3, incarnation="C")
    assert start is not None
    assert np.all(start.user_factors == 2.0) and start.rounds_trained == [1, 2]
    assert start.accountant_history == [(1.0, 0.1, 40)] and start.epsilon == 2.0
    assert start.discarded_rounds == [3, 3]


def test_a_client_missing_two_re_runs_of_the_same_round(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    _lost_round_3(store, incarnation="A")
    # B (resumed from 2) did not sample it and died in round 3; C asks it for round 4.
    start = store.start_round(4, resumed_from=3, incarnation="C")
    assert start is not None and start.rounds_trained == [1, 2]
    assert start.discarded_rounds == [3]


def test_a_lost_round_that_cannot_be_rolled_back_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    # The snapshot is itself from at or after the round the server resumed from.
    store.save(
        _state([1, 3, 4], fill=4.0, history=3, incarnation="A"),
        previous=_state([1, 3], fill=3.0, history=2, incarnation="A"),
    )
    with pytest.raises(ClientStateError, match=r"asks for round 6 \(resumed from round 3\)"):
        store.start_round(6, resumed_from=3, incarnation="B")


# ------------------------------------------------------ through local_train (real DP-SGD)


def _tiny_client() -> tuple[FedRecConfig, ClientData, dict[str, np.ndarray]]:
    cfg = resolve_config(
        {},
        {
            "embedding-dim": 4,
            "local-epochs": 1,
            "dp-sample-rate": 0.25,
            "text-tower": "off",
            # Bit-equal reruns are what these tests compare; never the default (see privacy.md).
            "reproducible-noise": True,
        },
    )
    rng = np.random.default_rng(0)
    n_items = 12
    train_users = np.repeat(np.arange(2), 6)
    train_items = np.concatenate([rng.choice(n_items, 6, replace=False) for _ in range(2)])
    data = ClientData(
        users=np.array([3, 5]),
        train_users=train_users,
        train_items=train_items,
        exclude=[train_items[train_users == k] for k in range(2)],
        seen=[train_items[train_users == k] for k in range(2)],
        test_items=np.array([-1, -1]),
        n_items=n_items,
    )
    return cfg, data, init_shared(n_items, 4, seed=1)


def _steps(state: ClientState) -> int:
    return sum(int(n) for _, _, n in state.accountant_history)


def test_local_train_of_a_lost_round_repeats_it_from_where_it_started(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg, data, shared = _tiny_client()
    cpu = torch.device("cpu")

    def train(store: ClientStateStore, rnd: int) -> dict[str, np.ndarray]:
        return local_train(cfg, data, shared, store, server_round=rnd, seed=7, device=cpu)[0]

    clean = ClientStateStore(tmp_path / "clean")
    for rnd in (1, 2, 3):
        clean_update = train(clean, rnd)
    crashed = ClientStateStore(tmp_path / "crashed")
    for rnd in (1, 2, 3, 3):  # the server lost round 3 and runs it again
        update = train(crashed, rnd)

    want, got = clean.load(), crashed.load()
    assert want is not None and got is not None
    assert got.rounds_trained == [1, 2, 3] and got.discarded_rounds == [3]
    # The re-run started from the round-2 factors: same private state, same shared update.
    assert np.array_equal(got.user_factors, want.user_factors)
    for name, value in clean_update.items():
        assert np.array_equal(update[name], value)
    # ...but the discarded run's DP steps are still accounted for (conservative epsilon).
    assert _steps(got) == 4 * _steps(want) // 3 and got.epsilon > want.epsilon > 0
    # Where round 3 started from is kept for the next loss.
    prev = crashed.load_previous()
    assert prev is not None and prev.rounds_trained == [1, 2]
    # Round 4 goes on normally.
    train(crashed, 4)
    after = crashed.load()
    assert after is not None and after.rounds_trained == [1, 2, 3, 4]


def test_local_train_after_a_missed_re_run_continues_from_before_the_lost_round(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg, data, shared = _tiny_client()
    cpu = torch.device("cpu")

    def train(store: ClientStateStore, rnd: int, resumed_from: int, incarnation: str):  # type: ignore[no-untyped-def]
        return local_train(
            cfg,
            data,
            shared,
            store,
            server_round=rnd,
            seed=7,
            device=cpu,
            resumed_from=resumed_from,
            incarnation=incarnation,
        )[0]

    # Server A trains rounds 1-2 and checkpoints them; this client is not sampled in round 3
    # (clean), or trains round 3 before A dies in it (crashed). Server B resumes from 3, runs
    # round 3 without this client and samples it in round 4.
    clean = ClientStateStore(tmp_path / "clean")
    crashed = ClientStateStore(tmp_path / "crashed")
    for store in (clean, crashed):
        train(store, 1, 1, "A")
        train(store, 2, 1, "A")
    train(crashed, 3, 1, "A")
    clean_update = train(clean, 4, 3, "B")
    update = train(crashed, 4, 3, "B")

    want, got = clean.load(), crashed.load()
    assert want is not None and got is not None
    assert got.rounds_trained == want.rounds_trained == [1, 2, 4]
    assert got.discarded_rounds == [3] and want.discarded_rounds == []
    assert got.incarnation == "B"
    # Round 4 started from the round-2 factors, as if round 3 had never been trained...
    assert np.array_equal(got.user_factors, want.user_factors)
    for name, value in clean_update.items():
        assert np.array_equal(update[name], value)
    # ...but the lost round's DP steps are still accounted for.
    assert _steps(got) == 4 * _steps(want) // 3 and got.epsilon > want.epsilon > 0
    prev = crashed.load_previous()
    assert prev is not None and prev.rounds_trained == [1, 2] and prev.incarnation == "A"
    # B's next round for this client goes on normally.
    train(crashed, 6, 3, "B")
    after = crashed.load()
    assert after is not None and after.rounds_trained == [1, 2, 4, 6]
    assert after.discarded_rounds == [3]


def test_a_lost_round_is_caught_after_a_second_restart_past_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A checkpointed 1-2 and died in 3 (this client trained 3 for A). B resumed from 3,
    # checkpointed 3-4 without sampling it and died in 5. C resumed from 5 asks for round 6:
    # resumed-from alone (5) cannot tell round 3 was lost; B's committed span can.
    store = ClientStateStore(tmp_path / "c0")
    _lost_round_3(store, incarnation="A")
    committed = {"A": (1, 2), "B": (3, 4)}
    start = store.start_round(6, resumed_from=5, incarnation="C", committed=committed)
    assert start is not None and start.rounds_trained == [1, 2]
    assert start.discarded_rounds == [3]
    assert start.accountant_history == _state([1, 2, 3], fill=0.0, history=3).accountant_history


def test_a_round_its_process_checkpointed_is_kept_after_restarts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c0")
    _lost_round_3(store, incarnation="A")
    # This time A did checkpoint round 3 before dying.
    committed = {"A": (1, 3), "B": (4, 5)}
    start = store.start_round(7, resumed_from=6, incarnation="C", committed=committed)
    assert start is not None and start.rounds_trained == [1, 2, 3] and not start.discarded_rounds


# --------------------------------------------------------------------- ledger gaps


def test_a_deleted_state_file_is_refused_not_reset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Regression: a missing state loaded as "never trained", i.e. a fresh ledger -- deleting
    # one file reset the privacy budget. Its witness, outside the folder, says it existed.
    store = ClientStateStore(tmp_path / "c0")
    store.save(_state([1, 2], fill=1.0, history=2))
    (tmp_path / "c0" / "state.sealed").unlink()
    with pytest.raises(ClientStateError, match="is missing, but its witness"):
        store.load()
    with pytest.raises(ClientStateError):
        store.start_round(3)


def test_a_state_of_another_run_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Regression: a second run on the same node continued the first run's factors and ledger.
    store = ClientStateStore(tmp_path / "c0")
    mine = _state([1], fill=1.0, history=1)
    mine.run_id = "aaaa"
    store.save(mine)
    assert store.start_round(2, run_id="aaaa") is not None
    with pytest.raises(ClientStateError, match="state of run aaaa, but this is run bbbb"):
        store.start_round(1, run_id="bbbb")
    assert store.load().run_id == "aaaa"  # type: ignore[union-attr]


def test_node_state_is_kept_per_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fedrec.client.dataview import state_dir

    cfg = FedRecConfig()
    node = str(tmp_path / "node")
    first, second = state_dir(cfg, 0, node, "aaaa"), state_dir(cfg, 0, node, "bbbb")
    assert first != second and first.parent == second.parent == tmp_path / "node"
    # Simulation keeps one folder per partition under the run's own directory.
    assert state_dir(cfg, 3, None, "aaaa").parts[-2:] == ("clients", "partition-3")
