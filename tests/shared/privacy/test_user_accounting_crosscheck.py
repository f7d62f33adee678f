"""The user-level epsilon, cross-checked against Google's independent dp-accounting.

fedrec accounts user-level DP as a Poisson-subsampled Gaussian mechanism composed over
rounds (rate q = clients per round / clients, noise multiplier σ). dp-accounting implements
the same mechanism separately: its RDP accountant must agree with fedrec's RDP, and its PLD
accountant (tight, numerical) must never report more loss than either of fedrec's; fedrec's
PRV (also tight) must land close to PLD.
"""

import logging

import dp_accounting as dpa
import pytest
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from fedrec.shared.privacy import RDP_ORDERS, account

CASES = [
    (1.0, 1.0, 5),  # every client in every round (the default fraction-train = 1)
    (1.0, 0.1, 50),  # 10% of the clients per round
    (0.8, 0.05, 200),
    (2.0, 0.02, 1000),
    (1.5, 0.5, 20),
]
DELTA = 1e-6


def _event(sigma: float, q: float, rounds: int) -> dpa.DpEvent:
    gaussian = dpa.GaussianDpEvent(sigma)
    step = gaussian if q == 1.0 else dpa.PoissonSampledDpEvent(q, gaussian)
    return dpa.SelfComposedDpEvent(step, rounds)


@pytest.mark.parametrize(("sigma", "q", "rounds"), CASES)
def test_user_epsilon_agrees_with_an_independent_accountant(
    sigma: float, q: float, rounds: int
) -> None:
    logging.getLogger("absl").setLevel(logging.ERROR)
    history = [(sigma, q, rounds)]
    ours_rdp = account(history, DELTA, "rdp").epsilon
    ours_prv = account(history, DELTA, "prv")
    assert ours_prv.accountant == "prv"

    rdp = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS))
    rdp.compose(_event(sigma, q, rounds))
    assert ours_rdp == pytest.approx(rdp.get_epsilon(DELTA), rel=0.01)

    pld = pld_privacy_accountant.PLDAccountant()
    pld.compose(_event(sigma, q, rounds))
    tight = pld.get_epsilon(DELTA)
    assert ours_rdp >= tight and ours_prv.epsilon >= 0.99 * tight
    assert ours_prv.epsilon == pytest.approx(tight, rel=0.03)


def test_rounds_at_changing_sampling_rates_compose() -> None:
    # The population can change between rounds: q is per round, and the rounds compose.
    history = [(1.0, 0.2, 10), (1.0, 0.1, 10)]
    rdp = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS))
    pld = pld_privacy_accountant.PLDAccountant()
    for acc in (rdp, pld):
        acc.compose(_event(1.0, 0.2, 10))
        acc.compose(_event(1.0, 0.1, 10))
    assert account(history, DELTA, "rdp").epsilon == pytest.approx(rdp.get_epsilon(DELTA), rel=0.01)
    assert account(history, DELTA, "prv").epsilon == pytest.approx(pld.get_epsilon(DELTA), rel=0.03)
