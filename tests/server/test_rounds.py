"""The round's rules without Flower: screening, combining, noise placement, the server step."""

import numpy as np
import pytest

from fedrec.server.aggregation import ServerSGD
from fedrec.server.rounds import Reply, RoundRules, RunPrivacy, SecureSum
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
