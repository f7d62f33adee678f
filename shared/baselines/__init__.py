"""Centralized reference models every result is compared against.

Each is a :class:`Recommender`: ``fit(split)`` on the training interactions, then
``score(users)``, a score function for :func:`fedrec.shared.evaluation.evaluate_model`.
:func:`tune` picks hyperparameters on the validation items.

- :class:`Popularity` / :func:`popularity_score_fn`, and :func:`random_score_fn` (chance);
- :class:`DPPopularity`: item counts released under user-level DP, the private baseline;
- :class:`ItemKNN` (cosine), :class:`EASE` (Steck 2019), :class:`IALS` (the ``implicit``
  package), :class:`CentralMF` (the project's MF/BPR trained centrally).
"""

from fedrec.shared.baselines.base import Recommender, interaction_matrix
from fedrec.shared.baselines.chance import random_score_fn
from fedrec.shared.baselines.dp_popularity import DPPopularity
from fedrec.shared.baselines.ease import EASE
from fedrec.shared.baselines.ials import IALS
from fedrec.shared.baselines.itemknn import ItemKNN
from fedrec.shared.baselines.mf import CentralMF
from fedrec.shared.baselines.popularity import (
    Popularity,
    popularity_score_fn,
    popularity_scores,
)
from fedrec.shared.baselines.tuning import Trial, Tuned, grid_points, tune

__all__ = [
    "EASE",
    "IALS",
    "CentralMF",
    "DPPopularity",
    "ItemKNN",
    "Popularity",
    "Recommender",
    "Trial",
    "Tuned",
    "grid_points",
    "interaction_matrix",
    "popularity_score_fn",
    "popularity_scores",
    "random_score_fn",
    "tune",
]
