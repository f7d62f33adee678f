"""The epsilon fedrec reports is Opacus' RDP accounting, never optimistic."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opacus.accountants import RDPAccountant

from fedrec.shared.config import PrivacyConfig
from fedrec.shared.privacy import (
    RDP_ORDERS,
    StepHistory,
    epsilon_of,
    history_of,
    make_accountant,
    report_for,
)


@settings(max_examples=25, deadline=None)
@given(
    sigma=st.floats(0.8, 4.0),
    q=st.floats(0.01, 1.0),
    steps=st.integers(1, 400),
)
def test_reported_epsilon_is_opacus_rdp_on_a_coarser_order_grid(
    sigma: float, q: float, steps: int
) -> None:
    reference = RDPAccountant()
    reference.history = [(sigma, q, steps)]
    ours = epsilon_of([(sigma, q, steps)], 1e-5)
    # Exactly Opacus' RDP accountant, evaluated on fedrec's order grid ...
    assert ours == pytest.approx(reference.get_epsilon(delta=1e-5, alphas=list(RDP_ORDERS)))
    # ... which is never much looser than Opacus' default grid. (It can be tighter at small
    # epsilon, where its extra large orders help; every order gives a valid upper bound.)
    default = reference.get_epsilon(delta=1e-5)
    assert ours <= 1.15 * default + 1e-6


def test_history_round_trip_and_composition() -> None:
    one = epsilon_of([(1.0, 0.1, 50)], 1e-5)
    two = epsilon_of([(1.0, 0.1, 50), (1.0, 0.1, 50)], 1e-5)
    assert two > one
    assert two == pytest.approx(epsilon_of([(1.0, 0.1, 100)], 1e-5))
    assert make_accountant([(1.0, 0.1, 50)]).history == [(1.0, 0.1, 50)]
    assert epsilon_of([], 1e-5) == 0.0


def test_report_states_unit_and_coverage_or_makes_no_claim() -> None:
    rep = report_for(PrivacyConfig(), 2.0)
    assert rep is not None
    assert rep["unit"] == "record" and rep["epsilon"] == 2.0 and rep["delta"] == 1e-5
    assert "user factor" in str(rep["covers"])
    assert report_for(PrivacyConfig(dp_enabled=False), None) is None


def test_mixed_history_matches_opacus_accountant() -> None:
    # Clients change sample rate when their data changes, and resumed runs append entries:
    # the cached per-step composition must still equal Opacus' accountant on the same orders.
    history = [(1.0, 0.1, 40), (1.3, 0.05, 7), (1.0, 0.1, 3)]
    reference = RDPAccountant()
    reference.history = list(history)
    expected = reference.get_epsilon(delta=1e-6, alphas=list(RDP_ORDERS))
    assert epsilon_of(history, 1e-6) == pytest.approx(expected, rel=1e-9)


def test_the_report_says_how_records_are_sampled_into_steps() -> None:
    full = report_for(PrivacyConfig(), 7.62)  # the defaults: dp-sample-rate 1.0
    poisson = report_for(PrivacyConfig(dp_sample_rate=0.1), 8.4)
    assert full is not None and poisson is not None
    assert "full batch" in str(full["mechanism"]) and "Poisson" not in str(full["mechanism"])
    assert "Poisson sampling at rate 0.1" in str(poisson["mechanism"])


def test_the_cohort_trainers_step_history_is_opacus_accountants() -> None:
    steps = [(1.0, 0.1)] * 3 + [(1.3, 0.05)] * 2 + [(1.0, 0.1)]
    for history in ([], [(1.0, 0.1, 4)], [(2.0, 1.0, 2)]):
        ours, reference = StepHistory(history), make_accountant(history)
        for sigma, q in steps:
            ours.step(noise_multiplier=sigma, sample_rate=q)
            reference.step(noise_multiplier=sigma, sample_rate=q)
        assert history_of(ours) == history_of(reference)


def test_accounting_alone_loads_opacus_rdp_analysis_without_opacus() -> None:
    # A fresh interpreter: Opacus' package (torch, sympy, scipy.stats) must stay unloaded,
    # and the epsilon be the one Opacus' own module gives.
    history = [(1.0, 0.1, 40), (1.3, 0.05, 7)]
    code = (
        "import sys; from fedrec.shared.privacy import epsilon_of; "
        f"print(repr(epsilon_of({history!r}, 1e-6))); "
        "print(sorted(m for m in ('opacus', 'torch', 'sympy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[1] == "[]"
    assert float(out[0]) == epsilon_of(history, 1e-6)  # here Opacus is imported: its module
