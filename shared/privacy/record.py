"""Record-level DP-SGD: Opacus' per-sample clipping and accountant, fedrec's noise and scale.

The pieces are Opacus' own, built explicitly (a grad-sample module -- ghost clipping or
hooks --, a DP optimizer, the RDP accountant) rather than through ``make_private``, because
two things Opacus does by default break the guarantee for federated clients:

- **Normalisation.** Opacus divides the noised sum of clipped gradients by its expected
  batch size ``q * n``: with ``n`` the client's own record count, the update's noise scale
  reveals ``n``, and adding or removing one record changes it, which the accountant's
  add/remove relation does not allow. Here the sum is divided by ``dp-batch-size``, a public
  constant equal for every client, so one record moves the released update by at most
  ``lr * dp-max-grad-norm / dp-batch-size`` whatever else the client holds.
- **Randomness.** The noise comes from a :class:`~fedrec.shared.privacy.random.DPRandom`
  (ChaCha20 by default), not a ``torch.Generator`` (32 effective seed bits on CPU), and so do
  the Poisson batch masks (:class:`PoissonBatches`): the server cannot regenerate either.

Sampling is public in its *shape*: every client runs ``steps_per_epoch`` steps per epoch
(``round(1 / dp-sample-rate)``) at rate ``1 / steps_per_epoch``, so the step count and the
accounted ε do not depend on the client's data either.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import torch
from opacus.accountants import RDPAccountant
from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping
from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
from opacus.validators import ModuleValidator

from fedrec.shared.config import PrivacyConfig
from fedrec.shared.privacy.accounting import make_accountant
from fedrec.shared.privacy.plan import sample_rate
from fedrec.shared.privacy.random import DPRandom


class _DPOptimizerArgs(TypedDict):
    """The keyword arguments both fedrec DP optimizers take (typed for ``**`` unpacking)."""

    noise_multiplier: float
    max_grad_norm: float
    expected_batch_size: int
    loss_reduction: Literal["sum"]
    noise_source: DPRandom
    public_batch_size: int


class PoissonBatches:
    """The batches of one epoch: each record in each step with probability ``rate``.

    ``rate = 1`` is full-batch DP-SGD (every record in every step, no randomness). Empty
    batches are yielded too: skipping them would misstate the sampling the accountant
    assumes.
    """

    def __init__(self, n_records: int, *, rate: float, steps: int, rng: DPRandom) -> None:
        if n_records < 1:
            raise ValueError("a client with no training interactions cannot train")
        self.n_records, self.rate, self.steps, self.rng = n_records, rate, steps, rng

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[torch.Tensor]:
        for _ in range(self.steps):
            if self.rate >= 1:
                yield torch.arange(self.n_records)
            else:
                mask = self.rng.bernoulli(self.rate, self.n_records)
                yield torch.from_numpy(mask).nonzero().flatten()


class _FedrecNoiseAndScale:
    """Replaces a DP optimizer's noise source and its normalisation (mixed into Opacus')."""

    noise_multiplier: float
    max_grad_norm: float
    params: list[torch.nn.Parameter]

    def __init__(
        self, *args: Any, noise_source: DPRandom, public_batch_size: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.noise_source = noise_source
        self.public_batch_size = int(public_batch_size)

    def add_noise(self) -> None:
        """``p.grad = summed clipped gradients + N(0, (σC)²)``, noise from the DP source."""
        std = getattr(self, "_adjusted_noise_multiplier", self.noise_multiplier)
        std *= self.max_grad_norm
        summed = [p.summed_grad for p in self.params]  # type: ignore[attr-defined]
        for value in summed:
            _check_processed_flag(value)
        noised = self.noise_source.add_normal_each(summed, std)
        for p, value, grad in zip(self.params, summed, noised, strict=True):
            p.grad = grad.view_as(p)
            _mark_as_processed(value)

    def scale_grad(self) -> None:
        """Divide by the public batch size (never by the client's own record count)."""
        for p in self.params:
            if p.grad is not None:
                p.grad /= self.public_batch_size


class FedrecDPOptimizer(_FedrecNoiseAndScale, DPOptimizer):
    """Opacus' DP optimizer (per-sample gradients from hooks) with fedrec's noise and scale."""


class FedrecGhostDPOptimizer(_FedrecNoiseAndScale, DPOptimizerFastGradientClipping):
    """Opacus' ghost-clipping DP optimizer with fedrec's noise and scale."""


@dataclass
class PrivateTraining:
    """The DP-wrapped module, optimizer and (ghost clipping) loss, and their accountant."""

    module: torch.nn.Module
    optimizer: DPOptimizer
    criterion: DPLossFastGradientClipping | None  # None: hooks mode, call backward yourself
    accountant: RDPAccountant

    def close(self) -> None:
        """Remove Opacus' hooks; the wrapped model keeps the trained weights."""
        close = getattr(self.module, "_close", None)
        if callable(close):
            close()


def make_private(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    privacy: PrivacyConfig,
    criterion: torch.nn.Module,
    rng: DPRandom,
    history: Sequence[Sequence[float]] | None = None,
) -> PrivateTraining:
    """Wrap ``model`` and ``optimizer`` for record-level DP-SGD under ``privacy``.

    ``criterion`` maps the model's output to per-sample losses and has a ``reduction``
    (ghost clipping calls it with ``"none"``); losses are *summed*, and the optimizer
    divides the noised sum by ``dp-batch-size``. The accountant continues ``history`` and is
    stepped at rate :func:`sample_rate` on every optimizer step.
    """
    ModuleValidator.validate(model, strict=True)
    common: _DPOptimizerArgs = {
        "noise_multiplier": privacy.dp_noise_multiplier,
        "max_grad_norm": privacy.dp_max_grad_norm,
        "expected_batch_size": privacy.dp_batch_size,  # unused under "sum"; stated anyway
        "loss_reduction": "sum",
        "noise_source": rng,
        "public_batch_size": privacy.dp_batch_size,
    }
    module: torch.nn.Module
    dp_optimizer: DPOptimizer
    dp_criterion = None
    if privacy.dp_grad_sample_mode == "ghost":
        # Ghost clipping: per-sample gradient *norms* without materialising per-sample
        # gradients, which for an embedding table are [batch, n_items, dim] dense.
        module = GradSampleModuleFastGradientClipping(
            model, batch_first=True, loss_reduction="sum", max_grad_norm=privacy.dp_max_grad_norm
        )
        dp_optimizer = FedrecGhostDPOptimizer(optimizer, **common)
        criterion.reduction = "sum"  # type: ignore[assignment]
        dp_criterion = DPLossFastGradientClipping(module, dp_optimizer, criterion, "sum")
    else:
        module = GradSampleModule(model, batch_first=True, loss_reduction="sum")
        dp_optimizer = FedrecDPOptimizer(optimizer, **common)
    module.forbid_grad_accumulation()  # type: ignore[operator]
    accountant = make_accountant(history)
    dp_optimizer.attach_step_hook(
        accountant.get_optimizer_hook_fn(sample_rate=sample_rate(privacy))
    )
    return PrivateTraining(module, dp_optimizer, dp_criterion, accountant)
