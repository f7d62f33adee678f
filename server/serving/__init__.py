"""The serving model: the released global model, numpy over its item table, for the API.

One job a module:

- :mod:`~fedrec.server.serving.recommender`: :class:`Recommender`, the facade the HTTP
  layer calls; builds itself from a checkpoint and composes the modules below;
- :mod:`~fedrec.server.serving.catalogue`: the look-ups over the served items (by id,
  title, genre, similarity);
- :mod:`~fedrec.server.serving.tables`: the served items as one immutable snapshot, and
  the changes that make a new one;
- :mod:`~fedrec.server.serving.towers`: the text towers loaded from a checkpoint (heads,
  encoder, LoRA adapters) and text encoding;
- :mod:`~fedrec.server.serving.batching`: concurrent encoder calls in one forward pass;
- :mod:`~fedrec.server.serving.scoring`: a new user's vector (liked items, fold-in,
  text) and the top k;
- :mod:`~fedrec.server.serving.explain`: the ``because`` of each recommendation;
- :mod:`~fedrec.server.serving.admin`: the admin's changes (add, replace, remove items
  known by their text), one writer at a time;
- :mod:`~fedrec.server.serving.placement`: where an admin-added item goes (text map or
  item head);
- :mod:`~fedrec.server.serving.errors`: what the serving model refuses.
"""

from fedrec.server.serving.errors import NoTextTower, TrainedItem, UnknownItems
from fedrec.server.serving.placement import NewItem
from fedrec.server.serving.recommender import ColdStartResult, Recommender, trained_with_dp
from fedrec.server.serving.scoring import FOLD_IN_WEIGHT
from fedrec.server.serving.tables import ScoredItem, Tables
from fedrec.server.serving.towers import TextTowers

__all__ = [
    "FOLD_IN_WEIGHT",
    "ColdStartResult",
    "NewItem",
    "NoTextTower",
    "Recommender",
    "ScoredItem",
    "Tables",
    "TextTowers",
    "TrainedItem",
    "UnknownItems",
    "trained_with_dp",
]
