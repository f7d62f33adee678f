"""The text towers (``text-tower``, ``item-head``, ``lora-*``, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from fedrec.shared.config.validate import check

TEXT_TOWERS = ("off", "heads", "lora")


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
        check(
            self.text_tower in TEXT_TOWERS,
            f"text-tower must be one of {', '.join(TEXT_TOWERS)}, got {self.text_tower!r}",
        )
        check(self.text_align_weight >= 0, "text-align-weight must be >= 0")
        check(0 <= self.item_factor_dropout < 1, "item-factor-dropout must be in [0, 1)")
        check(1 <= self.lora_rank <= 256, "lora-rank must be in [1, 256]")
        check(1 <= self.lora_layers <= 6, "lora-layers must be in [1, 6] (the encoder has 6)")
        check(8 <= self.text_max_length <= 512, "text-max-length must be in [8, 512]")
