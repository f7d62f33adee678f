"""The model a run trains and its local optimisation (``model``, ``learning-rate``, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from fedrec.shared.config.validate import check

MODELS = ("mf", "cooccurrence")


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
        check(self.model in MODELS, f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        check(1 <= self.embedding_dim <= 4096, "embedding-dim must be in [1, 4096]")
        check(self.local_epochs >= 1, "local-epochs must be >= 1")
        check(self.batch_size >= 1, "batch-size must be >= 1")
        check(self.learning_rate > 0, "learning-rate must be > 0")
        check(self.num_negatives >= 1, "num-negatives must be >= 1")
        check(0 < self.lr_decay <= 1, "lr-decay must be in (0, 1]")
        check(
            self.client_optimizer in ("sgd", "adam"),
            f"client-optimizer must be sgd or adam, got {self.client_optimizer!r}",
        )
        check(self.proximal_mu >= 0, "proximal-mu must be >= 0")

    def lr_at(self, server_round: int) -> float:
        """The client learning rate in ``server_round`` (1-based)."""
        return self.learning_rate * self.lr_decay ** max(server_round - 1, 0)
