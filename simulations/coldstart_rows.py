"""The cold-start result's row names, shared by the benchmark that writes them and its report.

:mod:`fedrec.simulations.bench_coldstart` names its rows with these; the renderer
(:mod:`fedrec.simulations.reports.coldstart`) finds them by the same names.
"""

from __future__ import annotations

K = 10  # the cut-off of every metric (the result's protocol records it as k)
WEIGHT_ROW = "fold-in weight "
SERVED_ROW = "hybrid, served: both"
SERVED_TEXT_ROW = "hybrid, served (text only)"
BEST_REF = "best reference, "  # the repeats' columns of the best centralized reference
PAIRED_ROW = "_paired vs popularity: "
RANDOM_LIKED = "3 liked at random"  # the prefix of the rows with a friendlier choice of items


def reference_base(method: str, refs: dict[str, dict[str, float]]) -> str:
    """The popularity row a centralized reference is a ratio against (see the references)."""
    prefix = method.split(": ")[0] + ": " if ": " in method else ""
    return next(m for m in refs if m.startswith(f"{prefix}popularity"))


def ratio_to_popularity(refs: dict[str, dict[str, float]], method: str) -> float:
    """A centralized reference's NDCG@10 over its popularity row's (0 where that is 0)."""
    base = refs[reference_base(method, refs)][f"ndcg@{K}"]
    return refs[method][f"ndcg@{K}"] / base if base > 0 else 0.0


def best_reference(
    refs: dict[str, dict[str, float]], suffix: str = "", prefix: str = ""
) -> tuple[str, float] | None:
    """The centralized reference (not a popularity row) with the highest ratio to popularity.

    Among the rows ending with ``suffix`` under ``prefix`` (``""``: the unprefixed rows,
    which share the served answers' protocol).
    """
    rows = [
        (m, ratio_to_popularity(refs, m))
        for m in refs
        if m.endswith(suffix)
        and m != reference_base(m, refs)
        and not m.startswith("ceiling")
        and (m.startswith(f"{prefix}: ") if prefix else ": " not in m)
    ]
    return max(rows, key=lambda mv: mv[1]) if rows else None
