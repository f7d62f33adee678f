"""SecAgg+ through the loopback Grid (conftest.py): Flower's real workflow and mod, no Ray."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Stage
from flwr.common.secure_aggregation.secaggplus_constants import Key as SecAggKey

import fedrec.client.replies as replies_module
from fedrec.client.client_app import build_client_app
from fedrec.client.message_config import secagg_survivors
from fedrec.client.secagg import secagg_mod
from fedrec.client.state import ClientStateStore
from fedrec.server.secagg import (
    STAGES,
    clipping_range,
    noise_survivors,
    quantization_levels,
    secagg_threshold,
    secure_sum,
)
from fedrec.server.server_app import run_federation
from fedrec.server.strategy import FedRecStrategy
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.errors import CheckpointError, NodeConfigError
from fedrec.shared.privacy import clip_update
from fedrec.shared.protocol import SECAGG_CLIENTS, SECAGG_MIN_SURVIVORS
from fedrec.shared.serialization import numpy_to_arrays

pytestmark = pytest.mark.usefixtures("task_identity")  # see conftest.py


SHAPES = {"item_factors": (7, 3), "item_bias": (7,)}


def _vector_app(vectors: dict[int, dict[str, np.ndarray]], fail: set[int]) -> ClientApp:
    """Each node replies with its fixed vector (or raises); records the config it got."""
    app = ClientApp()
    app.seen = {}  # type: ignore[attr-defined]

    @app.train(mods=[secagg_mod])
    def train(msg: Message, context: Context) -> Message:
        app.seen[context.node_id] = dict(msg.content["config"])  # type: ignore[attr-defined]
        if context.node_id in fail:
            raise RuntimeError("client dropped out")
        content = RecordDict(
            {
                "arrays": numpy_to_arrays(vectors[context.node_id]),
                "metrics": MetricRecord({"weight": 1.0}),
            }
        )
        return Message(content, reply_to=msg)

    return app


def _round(grid: Any, max_in_flight: int = 0, **privacy: Any) -> Any:
    cfg = resolve_config({}, {"user-dp": "secagg", **privacy})
    strategy = FedRecStrategy(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=2)
    arrays = numpy_to_arrays({k: np.zeros(s, np.float32) for k, s in SHAPES.items()})
    messages = list(strategy.configure_train(1, arrays, ConfigRecord({"x": 1}), grid))
    return secure_sum(
        grid,
        messages,
        server_round=1,
        privacy=cfg.privacy,
        timeout=None,
        max_in_flight=max_in_flight,
    )


def _vectors(n: int, seed: int = 0) -> dict[int, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        nid: {k: rng.normal(0, 0.5, s).astype(np.float32) for k, s in SHAPES.items()}
        for nid in range(1, n + 1)
    }


def test_the_server_gets_the_sum_of_what_the_clients_sent_and_nothing_else(
    loopback_grid: type,
) -> None:
    vectors = _vectors(5)
    grid = loopback_grid(_vector_app(vectors, fail=set()), 5)
    result = _round(grid)
    assert result.sampled == 5 and result.survivors == 5 and result.failures == 0
    expected = {k: sum(v[k].astype(np.float64) for v in vectors.values()) for k in SHAPES}
    # Equal up to SecAgg+'s stochastic quantization (5 clients x one level each).
    step = 2 * clipping_range(resolve_config({}, {}).privacy) / quantization_levels(5)
    for k in SHAPES:
        np.testing.assert_allclose(result.total[k], expected[k], atol=5 * step)
    # No reply carried a client's vector in the clear: the masked vectors are in the
    # SecAgg+ config record, every array record came back empty.
    for reply in grid.replies:
        assert all(len(rec) == 0 for rec in reply.content.array_records.values())


def test_a_windowed_round_stores_few_messages_and_sums_the_same(loopback_grid: type) -> None:
    # Flower's in-memory message store scans every stored message per node: each SecAgg+
    # stage goes out at most max-in-flight messages at a time, as fedrec's own rounds do.
    vectors = _vectors(7, seed=3)
    grid = loopback_grid(_vector_app(vectors, fail=set()), 7)
    result = _round(grid, max_in_flight=2)
    assert grid.most_stored == 2 and result.survivors == 7
    assert [s["messages"] for s in result.stages] == [7, 7, 7, 7]
    step = 2 * clipping_range(resolve_config({}, {}).privacy) / quantization_levels(7)
    for k in SHAPES:
        expected = sum(v[k].astype(np.float64) for v in vectors.values())
        np.testing.assert_allclose(result.total[k], expected, atol=7 * step)
    unbounded = loopback_grid(_vector_app(vectors, fail=set()), 7)
    _round(unbounded)
    assert unbounded.most_stored == 7  # Flower's own: the whole stage at once


@pytest.mark.parametrize(
    ("n", "privacy", "expected"),
    [
        (5, {"secagg-reconstruction-threshold": 0.6}, 3),  # round(0.6 x 5 shares)
        (9, {"secagg-num-shares": 4.0}, 4),  # 4 shares -> 5 (odd), round(0.7 x 5)
        (6, {"secagg-num-shares": 0.5, "secagg-reconstruction-threshold": 0.5}, 2),
    ],
)
def test_each_client_learns_the_threshold_it_must_noise_for(
    loopback_grid: type, n: int, privacy: dict[str, float], expected: int
) -> None:
    app = _vector_app(_vectors(n), fail=set())
    _round(loopback_grid(app, n), **privacy)
    for config in app.seen.values():  # type: ignore[attr-defined]
        # Flower's workflow computed it; the plain loop's simulation computes it alike.
        assert config[SECAGG_MIN_SURVIVORS] == expected and config[SECAGG_CLIENTS] == n
        assert config["x"] == 1 and config["server-round"] == 1  # the round's own config
    cfg = resolve_config({}, {"user-dp": "secagg", **privacy})
    assert secagg_threshold(cfg.privacy, n) == expected


def test_the_survivor_floor_raises_what_each_share_is_sized_for(loopback_grid: type) -> None:
    # A ring of 5 shares among 9 clients: SecAgg+'s threshold is 4, so without a floor each
    # share would be sized for 4 survivors; a floor of 0.9 makes it ceil(8.1) = 9. The
    # client computes it from the protocol's parameters and its own settings, the server
    # from its settings alone: they must agree.
    app = _vector_app(_vectors(9), fail=set())
    privacy = {"secagg-num-shares": 4.0, "secagg-min-survivors": 0.9}
    result = _round(loopback_grid(app, 9), **privacy)
    assert result.survivors == 9
    cfg = resolve_config({}, {"user-dp": "secagg", **privacy})
    for config in app.seen.values():  # type: ignore[attr-defined]
        assert config[SECAGG_MIN_SURVIVORS] == 4  # the protocol's threshold
        assert secagg_survivors(cfg, ConfigRecord(config)) == 9
    assert noise_survivors(cfg.privacy, 9) == 9
    without = resolve_config({}, {"user-dp": "secagg", "secagg-num-shares": 4.0})
    assert noise_survivors(without.privacy, 9) == 4


def test_below_the_survivor_floor_the_sum_stays_masked(loopback_grid: type) -> None:
    # One of 5 drops out: SecAgg+ alone (threshold 4) would unmask the other 4, but their
    # shares were sized for a floor of 5, so the server halts before the unmask stage.
    vectors = _vectors(5, seed=4)
    halted = _round(
        loopback_grid(_vector_app(vectors, fail={2}), 5), **{"secagg-min-survivors": 1.0}
    )
    assert halted.total is None and halted.survivors == 0
    assert [s["stage"] for s in halted.stages] == list(STAGES[:3])  # no unmask messages
    kept = _round(loopback_grid(_vector_app(vectors, fail={2}), 5), **{"secagg-min-survivors": 0.8})
    assert kept.survivors == 4 and kept.total is not None


def test_a_dropout_leaves_the_sum_of_the_survivors(loopback_grid: type) -> None:
    vectors = _vectors(5, seed=1)
    result = _round(loopback_grid(_vector_app(vectors, fail={2}), 5))
    assert result.survivors == 4 and result.failures == 1
    expected = sum(v["item_bias"].astype(np.float64) for n, v in vectors.items() if n != 2)
    np.testing.assert_allclose(result.total["item_bias"], expected, atol=1e-4)


def _gone_at(app: ClientApp, node: int, stage: str) -> Any:
    """``app``, but node ``node`` goes away (fails) at SecAgg+ stage ``stage``."""

    def call(msg: Message, context: Context) -> Message:
        if context.node_id == node:
            config = msg.content.config_records.get(RECORD_KEY_CONFIGS, ConfigRecord())
            if config.get(SecAggKey.STAGE) == stage:
                raise RuntimeError("node went away")
        return app(msg, context)

    return call


@pytest.mark.parametrize("stage", [Stage.SETUP, Stage.SHARE_KEYS])
def test_a_node_gone_before_it_shared_its_keys_leaves_the_sum_of_the_others(
    loopback_grid: type, stage: str
) -> None:
    # A node killed as a round starts (a SuperNode that crashed, a device switched off):
    # no one masked with it and no one holds shares of its keys, so it is left out of the
    # round. Flower 1.42's workflow asks for its key shares anyway, and halts the round
    # that the others trained for (and spent privacy budget on).
    vectors = _vectors(3, seed=2)
    result = _round(loopback_grid(_gone_at(_vector_app(vectors, fail=set()), 3, stage), 3))
    assert result.survivors == 2 and result.failures == 1 and result.sampled == 3
    expected = sum(v["item_bias"].astype(np.float64) for n, v in vectors.items() if n != 3)
    np.testing.assert_allclose(result.total["item_bias"], expected, atol=1e-4)


def test_a_misconfigured_node_is_named_and_left_out_of_later_secagg_rounds(
    loopback_grid: type, caplog: pytest.LogCaptureFixture
) -> None:
    # A node that cannot train with its node config (device='cuda' on a CPU node) fails
    # inside SecAgg+: the server learns why from its error reply, says so once, and does
    # not sample it again, instead of counting it as one more dropout every round.
    vectors = _vectors(4, seed=5)
    inner = _vector_app(vectors, fail=set())

    def app(msg: Message, context: Context) -> Message:
        if context.node_id == 2:
            raise NodeConfigError("node config device='cuda': no CUDA device on this node")
        return inner(msg, context)

    grid = loopback_grid(app, 4)
    cfg = resolve_config({}, {"user-dp": "secagg"})
    strategy = FedRecStrategy(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=2)
    arrays = numpy_to_arrays({k: np.zeros(s, np.float32) for k, s in SHAPES.items()})
    messages = list(strategy.configure_train(1, arrays, ConfigRecord({"x": 1}), grid))
    secure = secure_sum(grid, messages, server_round=1, privacy=cfg.privacy, timeout=None)
    assert secure.survivors == 3 and "device='cuda'" in secure.errors[2]
    with caplog.at_level("ERROR", logger="fedrec.server.rounds"):
        strategy.aggregate_secure(1, secure)
    assert "node 2 cannot train with its node config" in caplog.text
    later = strategy.configure_train(2, arrays, ConfigRecord({"x": 1}), grid)
    assert {m.metadata.dst_node_id for m in later} == {1, 3, 4}


def test_too_many_dropouts_reveal_nothing(loopback_grid: type) -> None:
    # Threshold 1.0: every client must survive; with one gone the sum stays masked.
    grid = loopback_grid(_vector_app(_vectors(4), fail={3}), 4)
    result = _round(grid, **{"secagg-reconstruction-threshold": 1.0})
    assert result.total is None and result.survivors == 0


def test_a_train_message_outside_secagg_is_refused_under_secagg(
    tmp_path: Path, loopback_grid: type
) -> None:
    settings = _settings(tmp_path, "secagg")
    app = build_client_app(settings)
    grid = loopback_grid(app, 6, node_config=True)
    strategy = FedRecStrategy(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=2)
    shared = {k: np.zeros(s, np.float32) for k, s in SHAPES.items()}
    messages = strategy.configure_train(1, numpy_to_arrays(shared), ConfigRecord({}), grid)
    replies = grid.send_and_receive(list(messages)[:1])
    assert replies[0].has_error() and "did not come through SecAgg+" in replies[0].error.reason


# ------------------------------------------------ the federation, fedrec's own client app


def _ratings(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(6):
        for t, i in enumerate(rng.choice(20, 8, replace=False)):
            rows.append(f"{u},{i},4,{1000 + t}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _ledgers(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Each simulated client's ledger, read through its sealed state."""
    found = {}
    for folder in sorted((run_dir / "clients").glob("partition-*")):
        state = ClientStateStore(folder).load()
        assert state is not None, folder
        found[folder.name] = state.to_dict()
    return found


def _settings(tmp_path: Path, placement: str, **extra: object) -> dict[str, object]:
    return {
        "dataset": "generic",
        "data-path": str(_ratings(tmp_path / "ratings.csv")),
        "num-rounds": 2,
        "embedding-dim": 4,
        "fraction-evaluate": 0.0,
        "final-evaluate-all": False,
        "dp-enabled": False,
        "user-dp": placement,
        "user-delta": 1e-3,
        "min-available-nodes": 6,
        "output-dir": str(tmp_path / "runs"),
        "run-name": placement,
        **extra,
    }


def test_secagg_federation_applies_the_noised_sum_and_keeps_ledgers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback_grid: type
) -> None:
    sent: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
    clipped: list[dict[str, np.ndarray]] = []
    noised = replies_module.noised_update

    def recording(cfg: Any, shared: Any, updated: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        out = noised(cfg, shared, updated, **kwargs)
        sent.append((shared, out))  # the round's global model, what this client sent
        clipped.append(clip_update({k: updated[k] - shared[k] for k in updated}, 1.0)[0])
        return out

    monkeypatch.setattr(replies_module, "noised_update", recording)
    settings = _settings(tmp_path, "secagg", **{"num-rounds": 1, "embedding-dim": 16})
    cfg = resolve_config({}, settings)
    grid = loopback_grid(build_client_app(settings), 6, node_config=True)
    run_dir = run_federation(grid, cfg)

    ckpt = load_checkpoint(run_dir)
    # What reached the server in the clear besides the masked vectors: no loss, no step
    # count, no timing (all follow the client's records without noise).
    records = [r.content.config_records for r in grid.replies if r.has_content()]
    plain = [rec["fitres.metrics"] for rec in records if "fitres.metrics" in rec]
    assert len(plain) == 6
    assert all(not {"train-loss", "steps", "seconds"} & set(m) for m in plain)
    assert len(sent) == 6  # one clipped, noised update per client, each then masked
    for _, update in sent:
        norm = np.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in update.values()))
        assert norm > 1.0  # clip 1 plus dense noise: the noise dominates
    # The new item table is the global one + server-lr x (sum of what was sent) / sampled:
    # the secure sum is the plain sum of the noised updates (up to quantization).
    lr = cfg.federation.server_lr
    start = sent[0][0]
    for k in ("item_factors", "item_bias"):
        total = sum(u[k].astype(np.float64) for _, u in sent)
        np.testing.assert_allclose(ckpt.tensors[k], start[k] + lr * total / 6, atol=lr * 1e-4)
    # ... which is the plain sum of the clipped updates plus noise of std σC sqrt(K / t):
    # at least σC, K = 6 clients each adding σC / sqrt(t), t = round(0.7 * 6) = 4.
    noise = np.concatenate(
        [
            (sum(u[k].astype(np.float64) for _, u in sent) - sum(c[k] for c in clipped)).ravel()
            for k in clipped[0]
        ]
    )
    assert noise.size >= 300  # the item table alone: >= 18 items x (16 + 1)
    assert noise.std() == pytest.approx(np.sqrt(6 / 4), rel=0.15)
    user = ckpt.manifest["user_privacy"]
    assert user["unit"] == "user" and user["placement"] == "secagg"
    assert user["rounds"] == 1 and user["sample_rate"] == 1.0 and user["delta"] == 1e-3
    assert user["epsilon"] > 0 and user["epsilon_against_server"] == pytest.approx(user["epsilon"])
    assert ckpt.manifest["privacy"] is None  # no record-level DP in this run
    row = ckpt.manifest["history"][-1]
    assert row["clients-ok"] == 6 and row["secagg-survivors"] == 6
    assert "train-loss" not in row and "update-norm-median" not in row
    for ledger in _ledgers(run_dir).values():
        assert ledger["user_ledger"] == {"secagg": [[1.0, 1.0, 1]]}
        assert ledger["user_epsilon"]["secagg"] == pytest.approx(user["epsilon"])


def test_secagg_clients_out_of_budget_still_send_their_noise(
    tmp_path: Path, loopback_grid: type
) -> None:
    # One round at σ = 1, δ = 1e-3 costs ε ≈ 3.55 against the server, two ≈ 5.43.
    settings = _settings(tmp_path, "secagg", **{"user-epsilon-budget": 4.0})
    run_dir = run_federation(
        loopback_grid(build_client_app(settings), 6, node_config=True),
        resolve_config({}, settings),
    )
    first, second = load_checkpoint(run_dir).manifest["history"]
    assert first["clients-ok"] == 6 and first["clients-out-of-budget"] == 0
    assert second["clients-ok"] == 0 and second["clients-out-of-budget"] == 6
    assert second["secagg-survivors"] == 6  # their noise shares are still in the sum
    for ledger in _ledgers(run_dir).values():
        assert ledger["rounds_trained"] == [1] and ledger["user_ledger"]["secagg"][0][2] == 1
        assert ledger["user_epsilon"]["secagg"] <= 4.0


class _ServerDied(BaseException):
    """The server process ending abruptly (not an Exception: nothing may handle it)."""


def test_a_secagg_run_killed_before_unmasking_resumes_without_losing_or_repeating_a_round(
    tmp_path: Path, loopback_grid: type
) -> None:
    from flwr.common.secure_aggregation.secaggplus_constants import (
        RECORD_KEY_CONFIGS,
        Key,
        Stage,
    )

    settings = _settings(tmp_path, "secagg", **{"num-rounds": 3})
    cfg = resolve_config({}, settings)
    app = build_client_app(settings)

    class DiesInRound3(loopback_grid):  # type: ignore[misc, valid-type]
        """Round 3's clients trained and sent masked vectors; the server dies unmasking."""

        def push_messages(self, messages: Any) -> Any:
            messages = list(messages)
            stages = {
                m.content.config_records[RECORD_KEY_CONFIGS].get(Key.STAGE)
                for m in messages
                if RECORD_KEY_CONFIGS in m.content.config_records
            }
            if Stage.UNMASK in stages:
                if self.rounds_unmasked == 2:
                    raise _ServerDied
                self.rounds_unmasked += 1
            return super().push_messages(messages)

    grid = DiesInRound3(app, 6, node_config=True)
    grid.rounds_unmasked = 0
    with pytest.raises(_ServerDied):
        run_federation(grid, cfg)
    run_dir = tmp_path / "runs" / "secagg"
    created = {r: load_checkpoint(run_dir, round=r).manifest["created_at"] for r in (1, 2)}
    with pytest.raises(CheckpointError, match="no checkpoint for round 3"):
        load_checkpoint(run_dir, round=3)
    at_kill = _ledgers(run_dir)
    assert len(at_kill) == 6
    assert all(s["rounds_trained"] == [1, 2, 3] for s in at_kill.values())

    # A restarted server (and restarted clients: fresh node contexts) resumes from round 2.
    run_federation(loopback_grid(build_client_app(settings), 6, node_config=True), cfg)
    for r in (1, 2):
        assert load_checkpoint(run_dir, round=r).manifest["created_at"] == created[r]
    final = load_checkpoint(run_dir)
    assert final.round == 3
    assert [row["round"] for row in final.manifest["history"]] == [1, 2, 3]
    user = final.manifest["user_privacy"]
    # The published model went through 3 noised releases ...
    assert user["rounds"] == 3 and user["history"] == [[1.0, 1.0, 3]]
    for s in _ledgers(run_dir).values():
        # ... every client trained each round once (round 3 again, from its round-2 state),
        assert s["rounds_trained"] == [1, 2, 3] and s["discarded_rounds"] == [3]
        # ... and its ledger keeps the lost round's masked vector as spent: 4 releases.
        assert s["user_ledger"] == {"secagg": [[1.0, 1.0, 4]]}
    # The server reports the clients' larger spend against itself.
    assert user["epsilon_against_server"] > user["epsilon"]


def test_a_dense_share_graph_over_many_clients_is_warned_of() -> None:
    from fedrec.server.secagg import key_pairs_warning
    from fedrec.shared.config import resolve_config

    every_pair = resolve_config({}, {"user-dp": "secagg", "secagg-num-shares": 1.0}).privacy
    assert key_pairs_warning(every_pair, 943) is not None  # ML-100K's users, every pair
    # Each client's Shamir work grows with shares x threshold: every pair of 100 clients is
    # already minutes of key stages, where 50 are not.
    assert key_pairs_warning(every_pair, 100) is not None
    assert key_pairs_warning(every_pair, 50) is None
    sparse = resolve_config({}, {"user-dp": "secagg", "secagg-num-shares": 20}).privacy
    assert key_pairs_warning(sparse, 943) is None
