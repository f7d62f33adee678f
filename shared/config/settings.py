"""The run's settings as frozen dataclasses, each section validating itself.

Parsing Flower's flat run config into them is :mod:`fedrec.shared.config.parse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from fedrec.shared.errors import ConfigError

DATASETS = ("ml-100k", "ml-1m", "ml-latest", "generic")
DATA_SOURCES = ("dataset", "node")
USER_DP_PLACEMENTS = ("off", "central", "local", "secagg")
ACCOUNTANTS = ("rdp", "prv")
FEDERATED_EVALUATION = ("auto", "on", "off")
MODELS = ("mf", "cooccurrence")
# The server optimizers and update combiners fedrec.server.aggregation implements; named here
# so that validating a config never imports the server.
STRATEGIES = ("fedavg", "fedavgm", "fedadam", "fedyogi")
AGGREGATIONS = ("mean", "trimmed-mean", "median")
# FedAvg's server learning rate: a row of the item table is moved by the few clients that saw
# it, then averaged over all sampled clients, and a rate well above 1 undoes that dilution.
FEDAVG_SERVER_LEARNING_RATE = 100.0
# FedAdam / FedYogi step every coordinate by about this much per round, whatever the size of
# its averaged update (Reddi et al. 2021 tune it in [1e-3, 1]).
ADAPTIVE_SERVER_LEARNING_RATE = 0.01


def default_server_learning_rate(strategy: str, momentum: float) -> float:
    """The server learning rate a strategy uses when ``server-learning-rate`` is 0.

    ``fedavg``: :data:`FEDAVG_SERVER_LEARNING_RATE`. ``fedavgm``: the same scaled by
    ``1 - momentum``, so that its steady-state step equals FedAvg's. ``fedadam`` and
    ``fedyogi``: :data:`ADAPTIVE_SERVER_LEARNING_RATE` (their steps are normalised per
    coordinate, so FedAvg's rate would move every coordinate by about 100 each round).
    """
    if strategy == "fedavg":
        return FEDAVG_SERVER_LEARNING_RATE
    if strategy == "fedavgm":
        return FEDAVG_SERVER_LEARNING_RATE * (1.0 - momentum)
    if strategy in ("fedadam", "fedyogi"):
        return ADAPTIVE_SERVER_LEARNING_RATE
    raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class DataConfig:
    """Which data, how it is split, and the implicit-feedback view."""

    dataset: str = "ml-100k"
    data_path: str = ""  # empty: the embedded ML-100K; else a folder or a ratings file
    implicit_threshold: float = 0.0  # keep ratings >= threshold as positives; 0 keeps all
    seed: int = 42
    # dataset: every client slices its users out of `dataset`; node: each node holds its own
    # users' data (node config data-dir) and data-path names the catalogue file only
    data_source: str = "dataset"

    def __post_init__(self) -> None:
        _check(
            self.dataset in DATASETS,
            f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}",
        )
        _check(
            self.data_source in DATA_SOURCES,
            f"data-source must be one of {', '.join(DATA_SOURCES)}, got {self.data_source!r}",
        )
        _check(
            self.data_source != "node" or bool(self.data_path),
            "data-source=node needs data-path: the catalogue file (a run's catalog.json, or "
            "`fedrec catalog --out FILE`); the server reads no ratings then",
        )
        _check(self.implicit_threshold >= 0, "implicit-threshold must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """The model a run trains and the local optimisation every trainer uses."""

    # mf: matrix factorisation (with text towers unless text-tower = off), trained in
    # rounds; cooccurrence: the private co-occurrence model, one release (CooccurrenceConfig).
    model: str = "mf"
    embedding_dim: int = 32
    local_epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 0.1
    num_negatives: int = 4
    # The client's local optimizer: sgd or adam (fresh moments every round; with DP, Opacus
    # wraps either, and the noise is added before the optimizer sees the gradient).
    client_optimizer: str = "sgd"
    # Client learning rate in round r is learning-rate * lr-decay ** (r - 1).
    lr_decay: float = 1.0
    # FedProx: pull the global item parameters towards the round's global model with
    # strength mu (0 = off). Applied as a separate step after each optimizer step, so it is
    # data-independent post-processing and leaves the DP guarantee untouched.
    proximal_mu: float = 0.0

    def __post_init__(self) -> None:
        _check(
            self.model in MODELS, f"model must be one of {', '.join(MODELS)}, got {self.model!r}"
        )
        _check(1 <= self.embedding_dim <= 4096, "embedding-dim must be in [1, 4096]")
        _check(self.local_epochs >= 1, "local-epochs must be >= 1")
        _check(self.batch_size >= 1, "batch-size must be >= 1")
        _check(self.learning_rate > 0, "learning-rate must be > 0")
        _check(self.num_negatives >= 1, "num-negatives must be >= 1")
        _check(0 < self.lr_decay <= 1, "lr-decay must be in (0, 1]")
        _check(
            self.client_optimizer in ("sgd", "adam"),
            f"client-optimizer must be sgd or adam, got {self.client_optimizer!r}",
        )
        _check(self.proximal_mu >= 0, "proximal-mu must be >= 0")

    def lr_at(self, server_round: int) -> float:
        """The client learning rate in ``server_round`` (1-based)."""
        return self.learning_rate * self.lr_decay ** max(server_round - 1, 0)


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
    noise_multiplier: float = 2.1
    max_grad_norm: float = 1.0
    target_delta: float = 1e-5
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
    grad_sample_mode: str = "ghost"
    # Each client refuses to train a round that would take its epsilon (at target-delta)
    # above this budget, and says so; 0 means no budget.
    epsilon_budget: float = 0.0
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

    def __post_init__(self) -> None:
        _check(self.noise_multiplier >= 0, "noise-multiplier must be >= 0")
        _check(self.dp_batch_size >= 1, "dp-batch-size must be >= 1")
        _check(self.secagg_max_colluders >= 0, "secagg-max-colluders must be >= 0")
        _check(self.max_grad_norm > 0, "max-grad-norm must be > 0")
        _check(0 < self.target_delta < 1, "target-delta must be in (0, 1)")
        _check(0 < self.dp_sample_rate <= 1, "dp-sample-rate must be in (0, 1]")
        _check(self.epsilon_budget >= 0, "epsilon-budget must be >= 0 (0 = no budget)")
        _check(
            self.grad_sample_mode in ("ghost", "hooks"),
            f"grad-sample-mode must be ghost or hooks, got {self.grad_sample_mode!r}",
        )
        _check(
            not self.dp_enabled or self.noise_multiplier > 0,
            "dp-enabled needs noise-multiplier > 0 (set dp-enabled=false to train without DP)",
        )
        _check(
            self.user_dp in USER_DP_PLACEMENTS,
            f"user-dp must be one of {', '.join(USER_DP_PLACEMENTS)}, got {self.user_dp!r}",
        )
        _check(self.user_clip > 0, "user-clip must be > 0")
        _check(
            self.user_dp == "off" or self.user_noise_multiplier > 0,
            "user-dp needs user-noise-multiplier > 0 (set user-dp=off to train without it)",
        )
        _check(0 <= self.user_delta < 1, "user-delta must be in [0, 1) (0 = 1/N^1.1)")
        _check(
            self.user_accountant in ACCOUNTANTS,
            f"user-accountant must be one of {', '.join(ACCOUNTANTS)}, "
            f"got {self.user_accountant!r}",
        )
        _check(self.user_epsilon_budget >= 0, "user-epsilon-budget must be >= 0 (0 = none)")
        _check(
            self.secagg_num_shares > 0,
            "secagg-num-shares must be > 0 (<= 1: a fraction of the round's clients)",
        )
        _check(
            0 < self.secagg_reconstruction_threshold <= 1,
            "secagg-reconstruction-threshold must be in (0, 1]",
        )


@dataclass(frozen=True)
class FederationConfig:
    """Rounds, client sampling and server-side aggregation."""

    # DP noise is independent per client, so it averages out over the clients of a round:
    # every client in every round, for few rounds, beats a small sample over many rounds at
    # the same epsilon (docs/privacy.md, "Choosing parameters").
    num_rounds: int = 5
    fraction_train: float = 1.0
    fraction_evaluate: float = 0.1
    min_train_nodes: int = 2
    # A round starts only once this many clients are connected (0: min-train-nodes). The
    # simulation sets it to the number of simulated clients, so that round 1 does not sample
    # from the few that happened to register first.
    min_available_nodes: int = 0
    final_evaluate_all: bool = True
    # Federated evaluation: each sampled client ranks its held-out item and sends metrics.
    # They are computed from the records without noise, so no DP guarantee covers them:
    # auto runs it without DP and skips it under any DP (record or user level); on runs it
    # anyway (the privacy reports then say so); off never runs it.
    federated_evaluation: str = "auto"
    personalize_epochs: int = 5  # on-device fit of the private factor before ranking
    # The server optimizer's learning rate of the item table; 0: the strategy's own default
    # (default_server_learning_rate). Read it through FederationConfig.server_lr.
    server_learning_rate: float = 0.0
    # Server learning rate of the dense global tensors (text heads, adapters): every client
    # updates all of them, so there is no dilution to undo.
    dense_server_learning_rate: float = 1.0
    # Server optimizer: fedavg (SGD), fedavgm (momentum), fedadam, fedyogi.
    strategy: str = "fedavg"
    server_momentum: float = 0.9  # FedAvgM momentum; beta1 of FedAdam/FedYogi
    server_beta2: float = 0.99
    server_tau: float = 1e-3  # adaptivity floor of FedAdam/FedYogi
    # How deltas are combined: mean, trimmed-mean (trim-fraction cut at each end), median.
    aggregation: str = "mean"
    trim_fraction: float = 0.1
    # Reject updates whose norm exceeds this multiple of the round's median norm (0 = off).
    update_norm_factor: float = 20.0
    # A round waits this long for replies; late clients (stragglers) are left out.
    round_timeout: float = 3600.0
    # At most this many messages outstanding at once (0: all of a round's at once). Bounds
    # the cost of Flower's in-memory message store, which scans every stored message for
    # each node it serves (server/messaging.py; the round times are in
    # docs/benchmarks/README.md, "Reading federation.md"). A deployment whose clients are
    # slow devices may want more of them training at once (docs/deployment.md).
    max_in_flight: int = 64
    # false: a round with any failed client is discarded (the global model stays as it was).
    accept_failures: bool = True
    # fedrec simulate only: the simulated users one worker trains per message. 0: the round's
    # users split evenly over one worker per core; 1: one user per node (Flower's default
    # simulation, and the fallback under user-dp=secagg); K: at most K users per message.
    # Flower's cost is per message, so fewer, larger messages make a round faster; what
    # each user trains, sends and spends is the same (client/cohort.py).
    simulation_users_per_message: int = 0

    def __post_init__(self) -> None:
        _check(self.num_rounds >= 1, "num-rounds must be >= 1")
        _check(0 < self.fraction_train <= 1, "fraction-train must be in (0, 1]")
        _check(0 <= self.fraction_evaluate <= 1, "fraction-evaluate must be in [0, 1]")
        _check(self.min_train_nodes >= 1, "min-train-nodes must be >= 1")
        _check(self.min_available_nodes >= 0, "min-available-nodes must be >= 0")
        _check(
            self.server_learning_rate >= 0,
            "server-learning-rate must be >= 0 (0: the strategy's default)",
        )
        _check(self.dense_server_learning_rate > 0, "dense-server-learning-rate must be > 0")
        _check(self.personalize_epochs >= 0, "personalize-epochs must be >= 0")
        _check(
            self.federated_evaluation in FEDERATED_EVALUATION,
            "federated-evaluation must be one of "
            f"{', '.join(FEDERATED_EVALUATION)}, got {self.federated_evaluation!r}",
        )
        _check(
            self.strategy in STRATEGIES,
            f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}",
        )
        _check(
            self.aggregation in AGGREGATIONS,
            f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {self.aggregation!r}",
        )
        _check(0 <= self.server_momentum < 1, "server-momentum must be in [0, 1)")
        _check(0 < self.server_beta2 < 1, "server-beta2 must be in (0, 1)")
        _check(self.server_tau > 0, "server-tau must be > 0")
        _check(0 <= self.trim_fraction < 0.5, "trim-fraction must be in [0, 0.5)")
        _check(self.update_norm_factor >= 0, "update-norm-factor must be >= 0")
        _check(self.round_timeout > 0, "round-timeout must be > 0")
        _check(self.max_in_flight >= 0, "max-in-flight must be >= 0")
        _check(
            self.simulation_users_per_message >= 0,
            "simulation-users-per-message must be >= 0 (0: split over the workers)",
        )

    @property
    def server_lr(self) -> float:
        """The item table's server learning rate in use (``server-learning-rate`` or default)."""
        if self.server_learning_rate > 0:
            return self.server_learning_rate
        return default_server_learning_rate(self.strategy, self.server_momentum)


TEXT_TOWERS = ("off", "heads", "lora")
COOCCURRENCE_ITEM_MODELS = ("spectral", "ease")


@dataclass(frozen=True)
class CooccurrenceConfig:
    """The private co-occurrence model (``fedrec train-cooccurrence``).

    Every user releases its item co-occurrence once, noised under user-level DP with the
    placement of ``user-dp`` (``off``: exact, ``central``, ``local`` or ``secagg``); the
    server builds item factors from the sum (:mod:`fedrec.server.cooccurrence`).
    """

    cooccurrence_epsilon: float = 4.0  # user-level ε of the one release (user-dp != off)
    # How the sum becomes item factors: "spectral" (its top eigenvectors: what survives DP
    # noise) or "ease" (EASE with dropout emphasis, full rank: the exact sum without DP).
    cooccurrence_item_model: str = "spectral"
    cooccurrence_rank: int = 128  # dimension of the item factors taken from the sum (spectral)
    cooccurrence_l2: float = 1.0  # EASE's L2 penalty λ on the summed terms (ease)
    cooccurrence_dropout: float = 0.5  # EASE's dropout-emphasis rate p in [0, 1) (ease)
    # Weight of the public text similarity next to the co-occurrence (text-tower != off).
    cooccurrence_content_weight: float = 0.1
    # The content part counts fade / (fade + n) for a user with n items (cold start: most).
    cooccurrence_content_fade: float = 2.0
    # Free text read as an intent (fedrec.server.serving.intent): the weights of the text
    # similarity and of the release's item popularity next to the genre match.
    cooccurrence_text_similarity: float = 2.0
    cooccurrence_text_prior: float = 3.0
    # Liked items (fedrec.server.serving.scoring): the weight of their factors' similarity
    # next to the release's item popularity.
    cooccurrence_liked_similarity: float = 4.0
    # Entries per message over Flower (one SecAgg+ round each): bounds what the server holds.
    cooccurrence_chunk_size: int = 200_000

    def __post_init__(self) -> None:
        _check(
            self.cooccurrence_item_model in COOCCURRENCE_ITEM_MODELS,
            f"cooccurrence-item-model must be one of {COOCCURRENCE_ITEM_MODELS}, "
            f"got {self.cooccurrence_item_model!r}",
        )
        _check(
            0 < self.cooccurrence_l2 <= 1e6,
            f"cooccurrence-l2 must be in (0, 1e6], got {self.cooccurrence_l2}",
        )
        weights = (
            self.cooccurrence_text_similarity,
            self.cooccurrence_text_prior,
            self.cooccurrence_liked_similarity,
        )
        _check(
            all(0 <= w <= 100 for w in weights),
            "cooccurrence-text-similarity, cooccurrence-text-prior and "
            "cooccurrence-liked-similarity must be in [0, 100]",
        )
        _check(
            0 <= self.cooccurrence_dropout < 1,
            f"cooccurrence-dropout must be in [0, 1), got {self.cooccurrence_dropout}",
        )
        _check(
            0 < self.cooccurrence_epsilon <= 100,
            f"cooccurrence-epsilon must be in (0, 100], got {self.cooccurrence_epsilon}",
        )
        _check(
            1 <= self.cooccurrence_rank <= 4096,
            f"cooccurrence-rank must be in [1, 4096], got {self.cooccurrence_rank}",
        )
        _check(
            0 <= self.cooccurrence_content_weight <= 100,
            "cooccurrence-content-weight must be in [0, 100], "
            f"got {self.cooccurrence_content_weight}",
        )
        _check(
            self.cooccurrence_chunk_size >= 1,
            f"cooccurrence-chunk-size must be >= 1, got {self.cooccurrence_chunk_size}",
        )
        _check(
            0 <= self.cooccurrence_content_fade <= 1000,
            f"cooccurrence-content-fade must be in [0, 1000], got {self.cooccurrence_content_fade}",
        )

    def collaborative_width(self, n_items: int) -> int:
        """Columns of the item factors that are collaborative (the rest are public text)."""
        if self.cooccurrence_item_model == "ease":
            return n_items
        return min(self.cooccurrence_rank, n_items)


@dataclass(frozen=True)
class TextConfig:
    """The text towers over all-MiniLM-L6-v2 (hybrid MF; cold start from text).

    ``heads``: the encoder is frozen, item-text embeddings are computed once and cached, and
    a linear user head is trained (text -> user vector; with ``item-head`` also text -> item
    vector + bias). ``lora``
    also trains LoRA adapters on the encoder's top layers for the user tower (meant for
    GPUs). ``off``: plain MF. Everything trained runs under the same DP-SGD as the factors.
    """

    text_tower: str = "heads"
    # Weight of the per-record loss that teaches the user head to map a liked item's text to
    # the user's (DP-trained) factor: what lets a new user be placed from text. Small because
    # DP-SGD clips each sample's whole gradient, and a large alignment term would take most
    # of the clip bound from the recommender's signal (docs/architecture.md, "Text towers",
    # has the measurement). Local Adam (no DP) is scale-invariant here.
    text_align_weight: float = 0.1
    # Only with item-head = true: the probability, per sample and item, of scoring an item
    # by its text alone in training, so that the item head must carry signal for items that
    # have no trained factor yet. Without an item head it does nothing.
    item_factor_dropout: float = 0.1
    # false (default): no item head; items are scored by their factors alone, as in MF, so
    # the text towers cannot cost warm users anything, and the service places new items by
    # the text map (fedrec.server.text_map), which placed them better than the head. true:
    # item vector q_i + W_i e_i, trained with item-factor-dropout. Both are measured in
    # docs/benchmarks/README.md ("Reading coldstart.md").
    item_head: bool = False
    lora_rank: int = 8
    lora_layers: int = 2
    text_max_length: int = 64
    text_cache_dir: str = ""  # empty: ~/.cache/fedrec/text-embeddings

    def __post_init__(self) -> None:
        _check(
            self.text_tower in TEXT_TOWERS,
            f"text-tower must be one of {', '.join(TEXT_TOWERS)}, got {self.text_tower!r}",
        )
        _check(self.text_align_weight >= 0, "text-align-weight must be >= 0")
        _check(0 <= self.item_factor_dropout < 1, "item-factor-dropout must be in [0, 1)")
        _check(1 <= self.lora_rank <= 256, "lora-rank must be in [1, 256]")
        _check(1 <= self.lora_layers <= 6, "lora-layers must be in [1, 6] (the encoder has 6)")
        _check(8 <= self.text_max_length <= 512, "text-max-length must be in [8, 512]")


@dataclass(frozen=True)
class OutputConfig:
    """Where checkpoints and client state go, and whether to resume."""

    output_dir: str = "runs"
    run_name: str = "ml100k-default"
    resume: bool = True

    def __post_init__(self) -> None:
        _check(bool(self.run_name.strip()), "run-name must not be empty")
        _check("/" not in self.run_name, "run-name must not contain '/'")


@dataclass(frozen=True)
class FedRecConfig:
    """Every setting of a run."""

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    text: TextConfig = field(default_factory=TextConfig)
    cooccurrence: CooccurrenceConfig = field(default_factory=CooccurrenceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        # The noise of central and secagg user-level DP is calibrated to the sum of clipped
        # updates: a trimmed mean or median of them has no such bound (and under SecAgg+ the
        # server never sees single updates to rank).
        _check(
            self.privacy.user_dp not in ("central", "secagg")
            or self.federation.aggregation == "mean",
            f"user-dp={self.privacy.user_dp} needs aggregation=mean, got "
            f"{self.federation.aggregation!r}",
        )

    @property
    def any_dp(self) -> bool:
        """Whether any DP guarantee (record or user level) is claimed for this run."""
        return self.privacy.dp_enabled or self.privacy.user_dp != "off"

    @property
    def federated_evaluation(self) -> bool:
        """Whether clients evaluate and send metrics (see ``federated-evaluation``)."""
        setting = self.federation.federated_evaluation
        return setting == "on" or (setting == "auto" and not self.any_dp)

    def to_run_config(self) -> dict[str, Any]:
        """The flat hyphenated mapping Flower uses (inverse of :func:`from_run_config`)."""
        flat: dict[str, Any] = {}
        for section in fields(self):
            part = getattr(self, section.name)
            for f in fields(part):
                flat[f.name.replace("_", "-")] = getattr(part, f.name)
        return flat

    def replace(self, **overrides: Any) -> FedRecConfig:
        """A copy with some flat hyphenated (or underscored) keys changed."""
        from fedrec.shared.config.parse import from_run_config

        flat = self.to_run_config()
        for key, value in overrides.items():
            flat[key.replace("_", "-")] = value
        return from_run_config(flat)
