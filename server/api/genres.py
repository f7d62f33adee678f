"""The genre vocabulary: the trained catalogue's genres, then the admin's extra ones."""

from __future__ import annotations

from collections.abc import Sequence

from fedrec.server.api.errors import MAX_LISTED, ApiError
from fedrec.server.api.schemas import MAX_GENRE_CHARS


def genre_vocabulary(catalogue: Sequence[str], extra: Sequence[str]) -> dict[str, str]:
    """Lower-case genre to its first spelling among ``catalogue`` then ``extra``."""
    vocabulary: dict[str, str] = {}
    for genre in (*catalogue, *extra):
        vocabulary.setdefault(genre.lower(), genre)
    return vocabulary


def canonical_genres(genres: Sequence[str], vocabulary: dict[str, str]) -> list[str]:
    """``genres`` in the vocabulary's spelling, each once; 422 naming the unknown ones."""
    unknown = [g for g in genres if g.lower() not in vocabulary]
    if unknown:
        shown = ", ".join(repr(g[:MAX_GENRE_CHARS]) for g in unknown[:MAX_LISTED])
        raise ApiError(
            422,
            "unknown_genre",
            f"unknown genre(s) {shown}; known: {', '.join(vocabulary.values())}",
        )
    return list(dict.fromkeys(vocabulary[g.lower()] for g in genres))
