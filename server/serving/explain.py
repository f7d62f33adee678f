"""Why an item was recommended: the ``because`` of each answer.

Where the scores are a sum of evidence (a co-occurrence model's liked items, a query read as
an intent: :func:`explain_by_removal`), the ``because`` is the liked item or query word whose
removal lowers the item's score most — the evidence that actually raised it — and
:data:`POPULARITY` where none does: the item is there for its popularity. Read through a
user vector (:func:`explain`, the MF models), it is the liked item whose vector agrees most
with the recommended one, or the word of the user's text whose user-space vector does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from fedrec.server.serving.tables import Tables

# Words too common to explain anything.
_STOP = frozenset(
    "a an and are as at be but by for from i i'm in into is it its like love me my of on or "
    "really so some that the their them these this to very was we with you enjoy movies "
    "movie films film watch watching".split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")
MAX_EXPLAIN_WORDS = 16
POPULARITY = "popularity"  # the because of an answer no word of the query raised


def words_of(text: str) -> list[str]:
    """Distinct content words of ``text`` in order (at most :data:`MAX_EXPLAIN_WORDS`)."""
    seen: list[str] = []
    for word in _WORD.findall(text):
        low = word.lower()
        if low not in _STOP and low not in (w.lower() for w in seen):
            seen.append(word)
    return seen[:MAX_EXPLAIN_WORDS]


def explain(
    t: Tables, top: np.ndarray, liked: np.ndarray, words: list[str], vectors: np.ndarray
) -> list[str | None]:
    """Per recommended item: the liked item id or ``"text: <word>"`` that agrees most.

    ``vectors`` are the user-space vectors of ``words``.
    """
    best: list[tuple[float, str | None]] = [(-np.inf, None)] * len(top)
    if liked.size:
        affinity = t.q[top] @ t.q[liked].T  # [k, n_liked]
        best = [(float(row.max()), t.ids[liked[int(np.argmax(row))]]) for row in affinity]
    if words:
        affinity = t.q[top] @ vectors.T  # [k, w]
        for j, row in enumerate(affinity):
            if float(row.max()) > best[j][0] or best[j][1] is None:
                best[j] = (float(row.max()), f"text: {words[int(np.argmax(row))]}")
    return [b for _, b in best]


def _whole_word(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w'-]){re.escape(word)}(?![\w'-])", flags=re.IGNORECASE)


def word_spans(text: str, word: str) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of every whole-word occurrence of ``word`` (any case)."""
    return [m.span() for m in _whole_word(word).finditer(text)]


def explain_by_removal(
    scores: np.ndarray, top: np.ndarray, labels: Sequence[str], without: Sequence[np.ndarray]
) -> list[str | None]:
    """Per recommended item: the label of the evidence whose removal lowers its score most.

    ``scores`` are the answer's scores; ``without[i]`` the scores without evidence
    ``labels[i]`` (a liked item's id, ``"text: <word>"``). An item no evidence raised says
    :data:`POPULARITY`.
    """
    out: list[str | None] = []
    for item in top:
        drops = [float(scores[item] - other[item]) for other in without]
        if drops and max(drops) > 1e-9:
            out.append(labels[int(np.argmax(drops))])
        else:
            out.append(POPULARITY)
    return out
