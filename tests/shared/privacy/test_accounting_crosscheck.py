"""The epsilon fedrec reports, cross-checked against Google's independent dp-accounting.

fedrec's number comes from Opacus' RDP analysis. dp-accounting implements the same
mechanism (Poisson-subsampled Gaussian, composed over steps) separately: its RDP accountant
must agree, and its PLD accountant -- a different, tighter method -- must never report more
privacy loss than fedrec does (fedrec would then be claiming a guarantee it does not have).
"""

import logging

import dp_accounting as dpa
import pytest
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from fedrec.shared.privacy import RDP_ORDERS, epsilon_of

CASES = [
    (2.1, 1.0, 2),  # one round of the defaults: full batch, 2 epochs
    (2.1, 1.0, 10),  # the demo's 5 rounds (ε 7.62)
    (1.0, 0.1, 20),  # the earlier defaults: 2 epochs at q = 0.1
    (1.0, 0.1, 100),
    (2.0, 0.2, 50),
    (1.3, 0.01, 1000),
    (0.8, 0.05, 400),
]


def _event(sigma: float, q: float, steps: int) -> dpa.DpEvent:
    return dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma)), steps)


@pytest.mark.parametrize(("sigma", "q", "steps"), CASES)
def test_epsilon_agrees_with_an_independent_accountant(sigma: float, q: float, steps: int) -> None:
    logging.getLogger("absl").setLevel(logging.ERROR)
    ours = epsilon_of([(sigma, q, steps)], 1e-5)
    rdp = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS))
    rdp.compose(_event(sigma, q, steps))
    # Same analysis, independent code: within 1% (dp-accounting skips an order it cannot
    # evaluate in one case, which makes it slightly looser there).
    assert ours == pytest.approx(rdp.get_epsilon(1e-5), rel=0.01)
    pld = pld_privacy_accountant.PLDAccountant()
    pld.compose(_event(sigma, q, steps))
    tight = pld.get_epsilon(1e-5)
    assert ours >= tight, "fedrec reports less privacy loss than a tighter accountant"
    assert ours <= 1.3 * tight  # and RDP is not absurdly loose at these settings


def test_a_composed_run_matches_composition_of_its_rounds() -> None:
    # A client's ledger is one history entry per (sigma, q) run of steps; five rounds of 20
    # steps must cost what dp-accounting says 100 composed steps cost.
    history = [(1.0, 0.1, 20)] * 5
    rdp = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS))
    for _ in range(5):
        rdp.compose(_event(1.0, 0.1, 20))
    assert epsilon_of(history, 1e-5) == pytest.approx(rdp.get_epsilon(1e-5), rel=1e-6)
