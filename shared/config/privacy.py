"""Record- and user-level DP settings: ``dp-*`` (record level), ``user-*``, ``secagg-*``."""

from __future__ import annotations

from dataclasses import dataclass

from fedrec.shared.config.validate import check

USER_DP_PLACEMENTS = ("off", "central", "local", "secagg")
ACCOUNTANTS = ("rdp", "prv")


@dataclass(frozen=True)
class PrivacyConfig:
    """Record-level DP-SGD (Opacus) on the client.

    Unit of privacy: one interaction (user, item, rating) of one user. Every parameter
    trained on the client's records -- the private user factor, the global item factors
    and biases -- is trained by the same DP-SGD optimizer, so the per-sample sensitivity
    argument holds. Negatives are drawn uniformly from the whole catalogue, never from
    the complement of the user's items, so no sample depends on other records.
    """

    dp_enabled: bool = True
    dp_noise_multiplier: float = 2.1
    dp_max_grad_norm: float = 1.0
    dp_delta: float = 1e-5
    # Poisson sampling rate of records per DP step. Every client runs round(1 / rate) steps
    # per epoch at rate 1 / round(1 / rate), so the step count and epsilon are the same for
    # every client whatever its data. 1.0 is full-batch DP-SGD (no amplification by
    # sampling): fewer, larger noisy steps kept more signal at the same epsilon
    # (docs/privacy.md, "Choosing parameters").
    dp_sample_rate: float = 1.0
    # The public constant a DP step's noised sum of clipped gradients is divided by (Opacus'
    # "expected batch size", fixed here instead of derived from the client's record count,
    # which the noise scale would then reveal). The same for every client.
    dp_batch_size: int = 64
    # How Opacus clips per sample: "ghost" (norms only; same clipped update, far less
    # memory for large catalogues) or "hooks" (materialised per-sample gradients).
    dp_grad_sample_mode: str = "ghost"
    # Each client refuses to train a round that would take its epsilon (at dp-delta)
    # above this budget, and says so; 0 means no budget.
    dp_epsilon_budget: float = 0.0
    # false (default): all DP randomness (noise, Poisson batch masks, negatives, dropout
    # masks; record and user level) comes from ChaCha20 keyed by the OS, so nobody can
    # regenerate it. true: drawn from the public run seed, for bit-reproducible experiments
    # only -- the guarantee then does not hold (every report and the log say so).
    reproducible_noise: bool = False
    # User-level DP (unit: one client's whole update in a round; see docs/privacy.md):
    # off | central (the server clips each update and noises the sum) | local (each client
    # clips and adds the full noise) | secagg (each client clips and adds its share of the
    # noise; the updates are summed under Flower's SecAgg+, the server sees only the sum).
    user_dp: str = "off"
    user_clip: float = 1.0  # L2 bound of a client's update over all global tensors together
    user_noise_multiplier: float = 1.0  # noise std on the sum = multiplier * user-clip
    user_delta: float = 0.0  # 0: 1 / N^1.1 for N clients (DP-FedAvg's choice; < 1/N)
    # Accountant of the user-level guarantee: rdp (Opacus RDP) or prv (Opacus PRV, tighter;
    # falls back to rdp, saying so, where it cannot be computed). Record-level DP-SGD keeps
    # its RDP accountant.
    user_accountant: str = "rdp"
    # Each client refuses a round that would take its user-level epsilon against the server
    # (local or secagg noise, its own ledger) above this; 0 means no budget.
    user_epsilon_budget: float = 0.0
    # SecAgg+: each client shares its keys with this fraction of the round's clients (1.0:
    # all), and the sum is recovered only if this fraction of those shares survives; each
    # client adds noise for the fewest survivors that still let the round complete.
    secagg_num_shares: float = 1.0
    secagg_reconstruction_threshold: float = 0.7
    # Each client sizes its noise share so that the sum keeps N(0, (σC)²) even if this many
    # surviving clients collude with the server and subtract their own shares.
    secagg_max_colluders: int = 0
    # The server unmasks a SecAgg+ sum only if at least this fraction of the round's sampled
    # clients sent their masked vectors (0: SecAgg+'s threshold alone), and each client sizes
    # its noise share for that many survivors. Above the threshold this floor is the
    # server's promise (an honest-but-curious server keeps it), not SecAgg+'s cryptography;
    # with a sparse share graph it is what keeps the noise near central placement's.
    secagg_min_survivors: float = 0.0

    def __post_init__(self) -> None:
        check(self.dp_noise_multiplier >= 0, "dp-noise-multiplier must be >= 0")
        check(self.dp_batch_size >= 1, "dp-batch-size must be >= 1")
        check(self.secagg_max_colluders >= 0, "secagg-max-colluders must be >= 0")
        check(
            0 <= self.secagg_min_survivors <= 1,
            "secagg-min-survivors must be in [0, 1] (a fraction of the round's clients)",
        )
        check(self.dp_max_grad_norm > 0, "dp-max-grad-norm must be > 0")
        check(0 < self.dp_delta < 1, "dp-delta must be in (0, 1)")
        check(0 < self.dp_sample_rate <= 1, "dp-sample-rate must be in (0, 1]")
        check(self.dp_epsilon_budget >= 0, "dp-epsilon-budget must be >= 0 (0 = no budget)")
        check(
            self.dp_grad_sample_mode in ("ghost", "hooks"),
            f"dp-grad-sample-mode must be ghost or hooks, got {self.dp_grad_sample_mode!r}",
        )
        check(
            not self.dp_enabled or self.dp_noise_multiplier > 0,
            "dp-enabled needs dp-noise-multiplier > 0 (set dp-enabled=false to train without DP)",
        )
        check(
            self.user_dp in USER_DP_PLACEMENTS,
            f"user-dp must be one of {', '.join(USER_DP_PLACEMENTS)}, got {self.user_dp!r}",
        )
        check(self.user_clip > 0, "user-clip must be > 0")
        check(
            self.user_dp == "off" or self.user_noise_multiplier > 0,
            "user-dp needs user-noise-multiplier > 0 (set user-dp=off to train without it)",
        )
        check(0 <= self.user_delta < 1, "user-delta must be in [0, 1) (0 = 1/N^1.1)")
        check(
            self.user_accountant in ACCOUNTANTS,
            f"user-accountant must be one of {', '.join(ACCOUNTANTS)}, "
            f"got {self.user_accountant!r}",
        )
        check(self.user_epsilon_budget >= 0, "user-epsilon-budget must be >= 0 (0 = none)")
        check(
            self.secagg_num_shares > 0,
            "secagg-num-shares must be > 0 (<= 1: a fraction of the round's clients)",
        )
        check(
            0 < self.secagg_reconstruction_threshold <= 1,
            "secagg-reconstruction-threshold must be in (0, 1]",
        )
