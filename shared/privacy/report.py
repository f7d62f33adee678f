"""What every guarantee says about itself: unit, mechanism, (ε, δ), and what it covers.

The manifest of every checkpoint and ``GET /v1/model`` carry these blocks. A block is built
from the settings that decide what leaves a client, so that it states only what holds for
the run that wrote it (e.g. whether federated evaluation, whose metrics no guarantee
covers, was on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedrec.shared.config import PrivacyConfig
from fedrec.shared.privacy.accounting import HistoryEntry, account
from fedrec.shared.privacy.plan import steps_per_epoch

RECORD_UNIT = "record"
USER_UNIT = "user"

REPRODUCIBLE_WARNING = (
    " WARNING: reproducible-noise=true drew the noise, batch masks and negatives from the "
    "public run seed; anyone who knows the seed can regenerate and remove the noise, so this "
    "guarantee does not hold."
)


def record_mechanism(cfg: PrivacyConfig) -> str:
    """The record-level mechanism as the report states it, with how records are sampled."""
    if steps_per_epoch(cfg) == 1:
        sampling = "full batch: every record in every step"
    else:
        rate = 1.0 / steps_per_epoch(cfg)
        sampling = f"Poisson sampling at rate {rate:g}, {steps_per_epoch(cfg)} steps per epoch"
    return (
        f"DP-SGD (Opacus; {sampling}; per-record gradients clipped to dp-max-grad-norm, Gaussian "
        "noise from a ChaCha20 CSPRNG, the noised sum divided by the public dp-batch-size; "
        "RDP accountant)"
    )


def _evaluation_clause(federated_evaluation: bool) -> str:
    if federated_evaluation:
        return (
            " NOT covered: federated-evaluation metrics (federated-evaluation is on: each "
            "client ranks its held-out item with a factor fitted without noise and sends "
            "the metrics)."
        )
    return (
        " No other statistic computed from a client's records leaves it: under DP (record "
        "or user level) no training loss, step count or timing is sent, and federated "
        "evaluation is off."
    )


def record_covers(cfg: PrivacyConfig, *, federated_evaluation: bool) -> str:
    """What the record-level guarantee covers, and what it does not."""
    text = (
        "Unit: one (user, item) interaction of one client, added or removed. Every parameter "
        "a client trains on its records (the private user factor, the shared item factors "
        "and biases, text heads and adapters) is trained by DP-SGD, so every update a client "
        "sends, and every model published from them, is covered. Each record moves the "
        "noised sum by at most dp-max-grad-norm, and the sum is divided by dp-batch-size, a "
        "public constant equal for every client, so the noise reveals nothing about how many "
        "records a client holds. Not covered: that a user took part and in which rounds; the "
        "number of a user's interactions beyond what one interaction changes (the update's "
        "size grows with it); when a client's reply arrives; public item metadata."
    )
    text += _evaluation_clause(federated_evaluation)
    if cfg.reproducible_noise:
        text += REPRODUCIBLE_WARNING
    return text


@dataclass(frozen=True)
class PrivacyReport:
    """What a model's record-level guarantee is, stated with its unit and coverage."""

    unit: str
    mechanism: str
    epsilon: float | None
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    batch_size: int
    covers: str
    epsilon_scope: str = "maximum over all clients so far (a bound for every user's records)"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (used in manifests and the HTTP API)."""
        return {
            "unit": self.unit,
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.max_grad_norm,
            "dp_batch_size": self.batch_size,
            "covers": self.covers,
            "epsilon_scope": self.epsilon_scope,
        }


def report_for(
    cfg: PrivacyConfig, epsilon: float | None, *, federated_evaluation: bool = False
) -> dict[str, object] | None:
    """The manifest's ``privacy`` entry; ``None`` when DP is off (no claim is made)."""
    if not cfg.dp_enabled:
        return None
    return PrivacyReport(
        unit=RECORD_UNIT,
        mechanism=record_mechanism(cfg),
        epsilon=epsilon,
        delta=cfg.dp_delta,
        noise_multiplier=cfg.dp_noise_multiplier,
        max_grad_norm=cfg.dp_max_grad_norm,
        batch_size=cfg.dp_batch_size,
        covers=record_covers(cfg, federated_evaluation=federated_evaluation),
    ).to_dict()


USER_MECHANISMS = {
    "central": (
        "Gaussian mechanism on the sum of clipped client updates (user-level DP-FedAvg): the "
        "server clips each update to user-clip (L2 over all shared tensors) and adds "
        "N(0, (user-noise-multiplier * user-clip)^2) once to their sum"
    ),
    "local": (
        "Each client clips its update to user-clip (L2 over all shared tensors) and adds "
        "N(0, (user-noise-multiplier * user-clip)^2) to it before sending"
    ),
    "secagg": (
        "Gaussian mechanism on the sum of clipped client updates, noise distributed: each "
        "client clips its update to user-clip and adds N(0, (user-noise-multiplier * "
        "user-clip)^2 / (t - c)), t = the fewest survivors with which Flower's SecAgg+ can "
        "still unmask the sum or, where higher, the server's survivor floor "
        "(secagg-min-survivors of the round's clients; it unmasks no sum of fewer), "
        "c = secagg-max-colluders; the server only learns the sum"
    ),
}
_USER_COVERS = {
    "central": (
        "Every published model (checkpoints, the HTTP API) with respect to everything one "
        "user contributed in every round. Not the server: it sees every raw update. Not "
        "who took part."
    ),
    "local": (
        "Every update a client sends, hence the server's view and every published model, "
        "with respect to everything one user contributed. Not who took part."
    ),
    "secagg": (
        "The server's view (only the noised sum of each round's updates) and every published "
        "model, with respect to everything one user contributed. SecAgg+'s masks hide a "
        "single update unless the server colludes with at least the reconstruction "
        "threshold of clients; the noise keeps its full strength against a server that "
        "colludes with up to secagg-max-colluders clients (who could subtract their own "
        "shares). Not who took part."
    ),
}
USER_AGAINST_SERVER = {
    "central": "none: the server sees every client's raw update",
    "local": "each client's own ledger (one Gaussian mechanism per round it took part in)",
    "secagg": (
        "each client's own ledger (one Gaussian mechanism per round it took part in); holds "
        "while the server colludes with at most secagg-max-colluders clients"
    ),
}
USER_EPSILON_SCOPE = (
    "for anyone who reads the published models: the subsampled Gaussian mechanism over all "
    "rounds so far, with the real client sampling rate per round"
)


def user_covers(placement: str, *, federated_evaluation: bool) -> str:
    """What the user-level guarantee of ``placement`` covers, and what it does not."""
    return _USER_COVERS[placement] + _evaluation_clause(federated_evaluation)


def user_report(
    privacy: PrivacyConfig,
    *,
    history: Sequence[HistoryEntry],
    delta: float,
    n_clients: int,
    epsilon_against_server: float | None,
    federated_evaluation: bool = False,
) -> dict[str, object] | None:
    """The manifest's ``user_privacy`` entry; ``None`` when user-level DP is off."""
    placement = privacy.user_dp
    if placement == "off":
        return None
    accounted = account(history, delta, privacy.user_accountant)
    return {
        "unit": USER_UNIT,
        "placement": placement,
        "mechanism": USER_MECHANISMS[placement],
        "accountant": accounted.accountant,
        "accountant_note": accounted.note,
        "epsilon": accounted.epsilon,
        "delta": delta,
        "noise_multiplier": privacy.user_noise_multiplier,
        "clip": privacy.user_clip,
        "rounds": int(sum(n for _, _, n in history)),
        "sample_rate": float(history[-1][1]) if history else None,
        "clients": n_clients,
        "epsilon_scope": USER_EPSILON_SCOPE,
        "epsilon_against_server": None if placement == "central" else epsilon_against_server,
        "against_server": USER_AGAINST_SERVER[placement],
        "covers": user_covers(placement, federated_evaluation=federated_evaluation),
        "history": [list(h) for h in history],
    }
