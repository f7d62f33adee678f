"""The round's rules without Flower: screening, combining, noise placement, the server step."""

import numpy as np
import pytest

from fedrec.server.aggregation import ServerSGD
from fedrec.server.rounds import Reply, RoundRules, RunPrivacy, SecureSum, progress_line
from fedrec.server.user_dp import CentralNoise, UserLevelAccountant
from fedrec.shared.config import resolve_config
from fedrec.shared.privacy import SeededRandom, account, default_delta

CURRENT = {"q": np.zeros((3, 2), np.float32)}


def _model(value: float) -> dict[str, np.ndarray]:
    return {"q": np.full((3, 2), value, np.float32)}


def _ok(node: int, value: float, **metrics: float) -> Reply:
    return Reply(node, _model(value), {"weight": 1.0, **metrics})


def test_the_mean_of_valid_updates_is_applied_and_every_other_reply_is_counted() -> None:
    # Prepare: two good updates, one failure, one refusal, one non-finite, one mis-shaped.
    replies = [
        _ok(1, 1.0, epsilon=0.5),
        _ok(2, 3.0, epsilon=1.5),
        Reply(3, None, error="killed"),
        Reply(4, {}, {"budget-exhausted": 1.0}),
        Reply(5, _model(np.nan)),
        Reply(6, {"q": np.ones((4, 2), np.float32)}),
    ]
    # Execute: one more client was sampled than answered.
    result = RoundRules(ServerSGD(1.0)).aggregate(1, CURRENT, replies, sampled=7)
    # Assert
    assert result.model is not None and np.allclose(result.model["q"], 2.0)
    m = result.metrics
    assert (m["clients-sampled"], m["clients-timed-out"], m["clients-ok"]) == (7, 1, 2)
    assert (m["clients-failed"], m["clients-out-of-budget"], m["clients-rejected"]) == (1, 1, 2)
    assert m["epsilon-max"] == 1.5 and m["epsilon-mean"] == 1.0
    assert result.norms == pytest.approx([np.sqrt(6), 3 * np.sqrt(6)])


def test_a_failure_discards_the_round_when_failures_are_not_accepted() -> None:
    rules = RoundRules(ServerSGD(1.0), accept_failures=False)
    result = rules.aggregate(1, CURRENT, [_ok(1, 1.0), Reply(2, None, error="gone")], sampled=2)
    assert result.model is None
    assert result.metrics["clients-ok"] == 0 and result.metrics["clients-failed"] == 1


def test_central_noise_clips_sums_and_divides_by_the_clients_sampled() -> None:
    # Prepare: near-zero noise, so the step is the mean of the clipped updates.
    noise = CentralNoise(clip=1.0, noise_multiplier=1e-9, rng=SeededRandom(0))
    rules = RoundRules(ServerSGD(1.0), update_norm_factor=2.0, central_noise=noise)
    replies = [_ok(1, 0.1), _ok(2, 100.0)]  # the second far above the median: not screened
    # Execute: four sampled, two answered.
    result = rules.aggregate(1, CURRENT, replies, sampled=4)
    # Assert: clipped to norm 1 each, summed, divided by 4; no norms are published.
    assert result.model is not None
    expected = (0.1 + 1.0 / np.sqrt(6)) / 4
    assert np.allclose(result.model["q"], expected, atol=1e-6)
    assert result.metrics["clients-ok"] == 2 and result.norms == []
    assert "update-norm-median" not in result.metrics


def test_a_secure_sum_is_averaged_over_the_sampled_and_refusals_are_counted() -> None:
    secure = SecureSum(
        sampled=4,
        total=_model(8.0),
        survivors=3,
        metrics=[{"epsilon": 1.0}, {"epsilon": 2.0}, {"budget-exhausted": 1.0}],
        failures=1,
    )
    result = RoundRules(ServerSGD(1.0)).aggregate_secure(1, CURRENT, secure)
    assert result.model is not None and np.allclose(result.model["q"], 2.0)
    m = result.metrics
    assert (m["clients-sampled"], m["clients-ok"], m["clients-failed"]) == (4, 2, 1)
    assert m["clients-out-of-budget"] == 1 and m["secagg-survivors"] == 3
    halted = RoundRules(ServerSGD(1.0)).aggregate_secure(1, CURRENT, SecureSum(sampled=4))
    assert halted.model is None


def test_the_run_privacy_accounts_each_round_at_its_sampling_rate() -> None:
    # Prepare
    privacy = resolve_config({}, {"user-dp": "central", "user-noise-multiplier": 2.0}).privacy
    user = UserLevelAccountant(privacy)
    user.fix_delta(4)
    spent = RunPrivacy(privacy, user)
    # Execute: two rounds, 4 of 4 then 2 of 4 clients sampled.
    first = {"clients-sampled": 4.0, "epsilon-max": 3.0}
    spent.after_round(first, available=4)
    second = {"clients-sampled": 2.0, "epsilon-max": 1.0}
    report = spent.after_round(second, available=4)
    # Assert: the record-level ε is the largest any client reported; the user-level one
    # composes both rounds.
    assert first["epsilon"] == second["epsilon"] == 3.0
    history = [(2.0, 1.0, 1), (2.0, 0.5, 1)]
    assert report is not None
    assert report["epsilon"] == pytest.approx(account(history, default_delta(4), "rdp").epsilon)
    assert second["user-epsilon"] == report["epsilon"]


def test_failures_are_logged_a_misconfigured_node_once_and_each_node_s_device(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Prepare: one node on the CPU, one on CUDA, one failing, one with an invalid node config
    # (the reason as Flower's runtime words a ClientApp's exception).
    misconfigured = (
        "<class 'fedrec.shared.errors.NodeConfigError'>:<'node config device='cuda': ...'>"
    )
    replies = [
        _ok(1, 1.0, device=-1.0),
        _ok(2, 3.0, device=0.0),
        Reply(3, None, error="killed"),
        Reply(4, None, error=misconfigured),
    ]
    rules = RoundRules(ServerSGD(1.0))
    # Execute: the same replies in two rounds.
    with caplog.at_level("INFO", logger="fedrec"):
        first = rules.aggregate(1, CURRENT, replies, sampled=4)
        second = rules.aggregate(2, CURRENT, replies, sampled=4)
    # Assert
    lines = [r.getMessage() for r in caplog.records]
    assert "round 1: node 3 failed: killed" in lines and "round 2: node 3 failed: killed" in lines
    left_out = [line for line in lines if "node 4 cannot train with its node config" in line]
    assert len(left_out) == 1 and "device='cuda'" in left_out[0]
    assert rules.misconfigured.keys() == {4}
    assert lines.count("node 1 trains on cpu") == 1 and lines.count("node 2 trains on cuda:0") == 1
    for result in (first, second):
        assert (result.metrics["clients-on-cpu"], result.metrics["clients-on-cuda"]) == (1, 1)


def test_the_round_line_names_who_took_part_where_loss_epsilon_and_time() -> None:
    row = {
        "round": 2,
        "clients-ok": 3,
        "clients-failed": 1,
        "clients-rejected": 0,
        "clients-on-cpu": 2,
        "clients-on-cuda": 1,
        "train-loss": 0.51234,
        "epsilon": 1.5,
        "seconds": 12.34,
    }
    assert progress_line(row, 5) == (
        "round 2/5 | clients 3 ok/1 failed/0 rejected | devices 2 cpu/1 cuda | loss 0.5123 | "
        "eps 1.50 | 12.3s"
    )
