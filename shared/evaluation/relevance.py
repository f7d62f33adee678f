"""Whether a new user's list looks right to a person: the genre share of its top 10.

Each profile is three liked ML-100K items and the genres a person would expect in the
answer (written down before looking at any model's answers). A profile whose items are not
in the catalogue is skipped, so other data sets simply report fewer profiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from fedrec.shared.data.dataset import ItemCatalog

PROFILES: Mapping[str, tuple[tuple[str, ...], frozenset[str]]] = {
    # Star Wars, The Empire Strikes Back, Return of the Jedi
    "star-wars": (("50", "172", "181"), frozenset({"Sci-Fi", "Adventure", "Action"})),
    # Toy Story, Aladdin, The Lion King
    "animation": (("1", "95", "71"), frozenset({"Animation", "Children's"})),
    # The Shining, Alien, A Nightmare on Elm Street
    "horror": (("200", "183", "219"), frozenset({"Horror", "Thriller"})),
    # Sleepless in Seattle, Four Weddings and a Funeral, I.Q.
    "romance": (("88", "70", "49"), frozenset({"Romance", "Comedy"})),
}

# What "looks right" means for a list of profiles' answers: every profile's top 10 at least
# half in its genres, and three quarters on average.
MIN_SHARE = 0.5
MEAN_SHARE = 0.75


def looks_right(shares: Mapping[str, float]) -> bool:
    """Whether profile genre shares meet :data:`MIN_SHARE` and :data:`MEAN_SHARE`."""
    values = list(shares.values())
    return bool(values) and min(values) >= MIN_SHARE and float(np.mean(values)) >= MEAN_SHARE


def top_ten(scores: np.ndarray, liked: np.ndarray) -> np.ndarray:
    """The 10 highest-scored items, the liked ones left out (ties in catalogue order)."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    scores[liked] = -np.inf
    return np.argsort(-scores, kind="stable")[:10]


def genre_share(items: np.ndarray, catalog: ItemCatalog, genres: frozenset[str]) -> float:
    """The share of ``items`` that has at least one of ``genres``."""
    if len(items) == 0:
        return 0.0
    return float(np.mean([bool(genres & set(catalog.genres[int(i)])) for i in items]))


def profile_relevance(
    catalog: ItemCatalog, top: Callable[[np.ndarray], np.ndarray]
) -> dict[str, float]:
    """Each profile's genre share of ``top(liked item indices)`` (the top 10)."""
    index = {raw: i for i, raw in enumerate(catalog.raw_ids)}
    out = {}
    for name, (liked, genres) in PROFILES.items():
        if not all(raw in index for raw in liked):
            continue
        out[name] = genre_share(top(np.array([index[r] for r in liked])), catalog, genres)
    return out
