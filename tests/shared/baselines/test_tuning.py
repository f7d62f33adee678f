"""Tuning picks on validation and never evaluates on test."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fedrec.shared.baselines import Recommender, grid_points, tune
from fedrec.shared.baselines import tuning as tuning_module
from fedrec.shared.data.dataset import Split

from .helpers import checkerboard


class HeldOutOracle(Recommender):
    """Scores 1 on each user's validation item (``which="valid"``) or test item, else 0."""

    name = "oracle"

    def __init__(self, *, which: str, bonus: float = 0.0) -> None:
        super().__init__()
        self.which = which
        self.bonus = bonus
        self._target = np.zeros(0, dtype=np.int64)

    def params(self) -> dict[str, Any]:
        return {"which": self.which, "bonus": self.bonus}

    def _fit(self, split: Split) -> None:
        self._target = split.valid_items if self.which == "valid" else split.test_items
        self._n = split.n_items

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = np.zeros((users.size, self._n))
        scores[np.arange(users.size), self._target[users]] = 1.0 + self.bonus
        return scores


def test_grid_points_cover_the_product_in_order() -> None:
    got = grid_points({"a": [1, 2], "b": ["x", "y"]})
    assert got == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    with pytest.raises(ValueError, match="at least one value"):
        grid_points({"a": []})


def test_tuning_chooses_on_validation_not_test() -> None:
    # Prepare: the "test" point would win if tuning ever scored the test items.
    split = checkerboard(12)

    # Execute
    tuned = tune(HeldOutOracle, {"which": ["test", "valid"]}, split, k=1)

    # Assert: the model that knows the validation items wins; both trials are recorded.
    assert tuned.chosen == {"which": "valid"}
    assert tuned.model.params()["which"] == "valid"
    assert [t.params["which"] for t in tuned.trials] == ["test", "valid"]
    assert tuned.trials[1].valid["hr@1_full"] == 1.0
    assert tuned.trials[0].valid["hr@1_full"] == 0.0
    report = tuned.to_dict()
    assert report["metric"] == "valid/ndcg@1_full" and report["grid"]["which"] == ["test", "valid"]


def test_tuning_never_asks_for_test_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    targets: list[str] = []
    real = tuning_module.evaluate_model

    def spy(*args: Any, **kwargs: Any) -> dict[str, float]:
        targets.append(kwargs.get("target", "test"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning_module, "evaluate_model", spy)

    tune(HeldOutOracle, {"which": ["test", "valid"], "bonus": [0.0, 1.0]}, checkerboard(8))

    assert targets == ["valid"] * 4


def test_ties_keep_the_first_grid_point() -> None:
    tuned = tune(HeldOutOracle, {"which": ["valid"], "bonus": [0.0, 1.0]}, checkerboard(8))
    assert tuned.chosen == {"which": "valid", "bonus": 0.0}


def test_a_split_without_validation_items_cannot_be_tuned() -> None:
    split = checkerboard(8)
    blind = Split(split.train, np.full(8, -1), split.test_items, split.n_users, split.n_items)
    with pytest.raises(ValueError, match="no validation items"):
        tune(HeldOutOracle, {"which": ["valid"]}, blind)
