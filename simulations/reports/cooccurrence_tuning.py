"""The co-occurrence tuning report: held-out NDCG@10 of the post-processing grid."""

from __future__ import annotations

from typing import Any

from fedrec.simulations.result_keys import dataset_label

KEYS = ("cooccurrence-rank", "cooccurrence-content-weight", "cooccurrence-content-fade")
SHOWN = 10  # best candidates listed


def _same(row: dict[str, Any], point: dict[str, Any]) -> bool:
    return all(float(row[k]) == float(point[k]) for k in KEYS)


def _edges(result: dict[str, Any]) -> list[str]:
    """The axes whose chosen value is at an end of the grid (the grid may be too narrow)."""
    out = []
    for key in KEYS:
        values = sorted(float(v) for v in result["grid"][key])
        if len(values) > 2 and float(result["chosen"][key]) in (values[0], values[-1]):
            out.append(key)
    return out


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    rows = sorted(result["rows"], key=lambda r: -r["heldout"]["mean"])
    pop = result["popularity_heldout"]
    chosen, shipped = result["chosen"], result["shipped"]
    rank_of_shipped = next((i for i, r in enumerate(rows) if _same(r, shipped)), None)
    grid = "; ".join(
        f"{k} ∈ {{{', '.join(f'{v:g}' for v in vs)}}}" for k, vs in result["grid"].items()
    )
    lines = [
        "# Choosing the co-occurrence model's defaults on held-out items",
        "",
        f"{dataset_label(result['dataset'])} ({result['users']} users, {result['items']} "
        f"items), {result['date']}. Each candidate is scored by its NDCG@10 averaged over "
        "three held-out items per user, never a test item (the test item is excluded from "
        "every ranking): the **validation** item (second to last; the release built from the "
        "training items), and the last and second-to-last **training** items (a "
        "leave-last-out split of the training items, its own release built from the rest). "
        f"User-level ε {result['epsilon']:g}, placement {result['placement']} (noise std on "
        f"the sum {result['noise_std_on_sum']:.3f}: the exact sum plus one Gaussian draw of "
        "the std the clients' shares add up to), "
        f"{result['draws']} fresh draws per candidate, every candidate post-processing of the "
        "same draws. Grid (fixed in advance; widened past ends that earlier runs chose, never "
        f"narrowed): {grid}.",
        "",
        f"Popularity on the same held-out items: NDCG@10 {pop:.4f}.",
        "",
        "| rank | content weight | fade | held-out NDCG@10 (mean) | 95% interval | × popularity |",
        "|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(rows):
        if i >= SHOWN and not _same(row, shipped):
            continue
        v = row["heldout"]
        ratio = f"{v['mean'] / pop:.2f}x" if pop > 0 else "-"
        mark = " (chosen)" if _same(row, chosen) else ""
        mark += " (shipped before)" if _same(row, shipped) and not _same(row, chosen) else ""
        lines.append(
            f"| {row['cooccurrence-rank']:g}{mark} | {row['cooccurrence-content-weight']:g} | "
            f"{row['cooccurrence-content-fade']:g} | {v['mean']:.4f} | {v['low']:.4f} – "
            f"{v['high']:.4f} | {ratio} |"
        )
    lines += [
        "",
        "**Chosen**: "
        + ", ".join(f"{k} = {chosen[k]:g}" for k in KEYS)
        + (
            " (the defaults this run had)."
            if _same(chosen, shipped)
            else "; this run had "
            + ", ".join(f"{k} = {float(shipped[k]):g}" for k in KEYS)
            + (
                f", rank {rank_of_shipped + 1} of {len(rows)} on the held-out items."
                if rank_of_shipped is not None
                else "."
            )
        ),
    ]
    edges = _edges(result)
    if edges:
        lines += [
            "",
            f"At an end of its grid: {', '.join(edges)} (a wider grid may choose past it).",
        ]
    lines += [
        "",
        "The choice reads the users' held-out items, which the privacy accounting does not "
        "cover: it is made once on this data set and shipped as defaults, and "
        "`fedrec bench cooccurrence` verifies them on test with fresh releases through the "
        "product's path. A deployment that re-tunes on its own users must account for it.",
        "",
        f"Regenerate: `fedrec bench cooccurrence --tune` (writes {name}.json / .md).",
        "",
    ]
    return "\n".join(lines)
