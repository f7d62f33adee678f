"""The private co-occurrence model (``cooccurrence-*``)."""

from __future__ import annotations

from dataclasses import dataclass

from fedrec.shared.config.validate import check

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
        check(
            self.cooccurrence_item_model in COOCCURRENCE_ITEM_MODELS,
            f"cooccurrence-item-model must be one of {COOCCURRENCE_ITEM_MODELS}, "
            f"got {self.cooccurrence_item_model!r}",
        )
        check(
            0 < self.cooccurrence_l2 <= 1e6,
            f"cooccurrence-l2 must be in (0, 1e6], got {self.cooccurrence_l2}",
        )
        weights = (
            self.cooccurrence_text_similarity,
            self.cooccurrence_text_prior,
            self.cooccurrence_liked_similarity,
        )
        check(
            all(0 <= w <= 100 for w in weights),
            "cooccurrence-text-similarity, cooccurrence-text-prior and "
            "cooccurrence-liked-similarity must be in [0, 100]",
        )
        check(
            0 <= self.cooccurrence_dropout < 1,
            f"cooccurrence-dropout must be in [0, 1), got {self.cooccurrence_dropout}",
        )
        check(
            0 < self.cooccurrence_epsilon <= 100,
            f"cooccurrence-epsilon must be in (0, 100], got {self.cooccurrence_epsilon}",
        )
        check(
            1 <= self.cooccurrence_rank <= 4096,
            f"cooccurrence-rank must be in [1, 4096], got {self.cooccurrence_rank}",
        )
        check(
            0 <= self.cooccurrence_content_weight <= 100,
            "cooccurrence-content-weight must be in [0, 100], "
            f"got {self.cooccurrence_content_weight}",
        )
        check(
            self.cooccurrence_chunk_size >= 1,
            f"cooccurrence-chunk-size must be >= 1, got {self.cooccurrence_chunk_size}",
        )
        check(
            0 <= self.cooccurrence_content_fade <= 1000,
            f"cooccurrence-content-fade must be in [0, 1000], got {self.cooccurrence_content_fade}",
        )

    def collaborative_width(self, n_items: int) -> int:
        """Columns of the item factors that are collaborative (the rest are public text)."""
        if self.cooccurrence_item_model == "ease":
            return n_items
        return min(self.cooccurrence_rank, n_items)
