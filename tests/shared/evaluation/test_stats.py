"""Statistics: AUC and TPR at low FPR against brute force, paired differences."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.shared.evaluation import (
    auc,
    mean_and_se,
    paired_difference,
    paired_standard_error,
    standard_error,
    tpr_at_fpr,
)


def _brute_force_auc(scores: list[float], labels: list[bool]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3, 3) | st.floats(-1e3, 1e3, allow_nan=False), st.booleans()),
        min_size=2,
        max_size=40,
    ).filter(lambda xs: 0 < sum(y for _, y in xs) < len(xs))
)
def test_auc_matches_the_pairwise_definition(pairs: list[tuple[float, bool]]) -> None:
    scores = [float(s) for s, _ in pairs]
    labels = [y for _, y in pairs]
    assert auc(np.array(scores), np.array(labels)) == pytest.approx(
        _brute_force_auc(scores, labels), abs=1e-12
    )


def test_auc_extremes_and_a_missing_class() -> None:
    assert auc(np.array([3.0, 2.0, 1.0]), np.array([True, False, False])) == 1.0
    assert auc(np.array([1.0, 2.0, 3.0]), np.array([True, False, False])) == 0.0
    assert auc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5
    assert math.isnan(auc(np.array([1.0, 2.0]), np.array([True, True])))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-3, 3), st.booleans()), min_size=2, max_size=300),
    st.sampled_from([0.0, 0.01, 0.1, 0.5]),
)
def test_tpr_at_low_fpr_keeps_the_false_positive_rate(
    pairs: list[tuple[float, bool]], fpr: float
) -> None:
    scores = np.array([s for s, _ in pairs])
    labels = np.array([y for _, y in pairs])
    tpr = tpr_at_fpr(scores, labels, fpr)
    if labels.all() or not labels.any():
        assert math.isnan(tpr)
        return
    assert 0.0 <= tpr <= 1.0
    # Some threshold lets at most fpr of the negatives and exactly tpr of the positives pass.
    neg, pos = scores[~labels], scores[labels]
    cuts = [-math.inf, *sorted(set(scores.tolist()))]
    assert any(
        np.mean(neg > t) <= fpr + 1e-12 and math.isclose(np.mean(pos > t), tpr) for t in cuts
    )


def test_tpr_at_low_fpr_extremes() -> None:
    labels = np.array([True] * 5 + [False] * 200)
    separated = np.r_[np.full(5, 2.0), np.linspace(-1, 1, 200)]
    assert tpr_at_fpr(separated, labels) == 1.0
    assert tpr_at_fpr(-separated, labels) == 0.0
    assert tpr_at_fpr(np.zeros(205), labels) == 0.0  # ties go against the attacker


def test_paired_difference_hand_computed() -> None:
    d = paired_difference([0.5, 0.0, 1.0, 0.0], [0.0, 0.0, 0.5, 0.5])
    # differences 0.5, 0, 0.5, -0.5: mean 0.125, sample sd 0.4787, se 0.2394
    assert d.n == 4 and math.isclose(d.mean, 0.125)
    assert math.isclose(d.se, 0.47871355 / 2, rel_tol=1e-6)
    # Student's t with 3 degrees of freedom: 3.182, not the normal 1.96.
    assert math.isclose(d.high - d.mean, 3.1824 * d.se, rel_tol=1e-4)
    assert math.isclose(d.mean - d.low, d.high - d.mean)
    many = paired_difference(np.arange(1000.0) % 7, np.zeros(1000))
    assert math.isclose(many.high - many.mean, 1.9623 * many.se, rel_tol=1e-3)
    with pytest.raises(ValueError, match="same users"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference([1.0], [1.0])


@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=50),
    st.floats(-1, 1),
)
def test_paired_difference_properties(values: list[float], shift: float) -> None:
    a = np.array(values)
    same = paired_difference(a, a)
    assert same.mean == 0 and same.se == 0
    # A constant shift for every user is found exactly, with no spread.
    shifted = paired_difference(a + shift, a)
    assert math.isclose(shifted.mean, shift, abs_tol=1e-9) and shifted.se < 1e-9
    # Swapping the models mirrors the interval.
    b = a[::-1]
    fwd, back = paired_difference(a, b), paired_difference(b, a)
    assert math.isclose(fwd.mean, -back.mean, abs_tol=1e-12)
    assert math.isclose(fwd.se, back.se) and fwd.low <= fwd.mean <= fwd.high


def test_standard_errors_and_the_summary_of_a_column() -> None:
    # Prepare: four values whose sample sd is known.
    values = [0.5, 0.0, 0.5, -0.5]
    # Execute
    summary = mean_and_se([*values, float("nan")])
    # Assert: NaN is left out; SE is sd / sqrt(n); fewer than two values have none.
    assert summary["n"] == 4 and math.isclose(summary["mean"], 0.125)
    assert math.isclose(summary["se"], standard_error(values))
    assert math.isclose(standard_error(values), 0.47871355 / 2, rel_tol=1e-6)
    assert math.isnan(standard_error([1.0])) and math.isnan(mean_and_se([])["mean"])
    assert math.isclose(
        paired_standard_error([1.0, 0.0, 1.5, 0.0], [0.5, 0.0, 1.0, 0.5]),
        paired_difference([1.0, 0.0, 1.5, 0.0], [0.5, 0.0, 1.0, 0.5]).se,
    )
    assert math.isnan(paired_standard_error([1.0, 2.0], [1.0]))
