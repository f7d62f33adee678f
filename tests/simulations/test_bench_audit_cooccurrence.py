"""The co-occurrence release's audit passes the product's release and catches broken ones.

Fast: a synthetic background of 100 users over 120 items and 400 canaries, at ε 1 (a claim
that 400 canaries can show broken). This is the test that would catch a violation of the
release's guarantee: the product's own functions run it, the same attacker must fail on
them and succeed on the controls.
"""

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from fedrec.shared.config import resolve_config
from fedrec.simulations.bench_audit_cooccurrence import (
    cooccurrence_arm,
    diagonal_entries,
    draw_canaries,
    pair_entries,
    release_audit,
    training_background,
)
from fedrec.simulations.reports.audit import markdown_report, markdown_section

REPORTS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"


def _background(n_users: int = 100, n_items: int = 120) -> tuple[list[np.ndarray], int]:
    rng = np.random.default_rng(5)
    users = [
        np.sort(rng.choice(n_items, int(rng.integers(1, 15)), replace=False))
        for _ in range(n_users)
    ]
    return users, n_items


def test_canaries_share_no_pair_and_their_pairs_are_off_the_diagonal() -> None:
    sets = draw_canaries(60, 200, 3, np.random.default_rng(0))
    pairs = [p for s in sets for p in combinations(s.tolist(), 2)]
    assert len(sets) == 200 and len(pairs) == len(set(pairs)) == 600
    entries = [pair_entries(s, 60) for s in sets]
    flat = np.concatenate(entries)
    assert all(e.size == 3 for e in entries) and np.unique(flat).size == flat.size
    assert not np.isin(flat, diagonal_entries(60)).any()
    with pytest.raises(ValueError, match="distinct item pairs"):
        draw_canaries(10, 100, 3, np.random.default_rng(0))


@pytest.fixture(scope="module")
def arm() -> dict:
    return cooccurrence_arm(
        resolve_config({}, {}),
        epsilons=(1.0,),
        canaries=400,
        canary_size=4,
        background=_background(),
    )


@pytest.mark.parametrize("placement", ["central", "secagg"])
def test_the_release_holds_and_broken_releases_are_caught(arm: dict, placement: str) -> None:
    rows = {r["mechanism"]: r for r in arm["rows"] if r["placement"] == placement}
    assert set(rows) == {"fedrec", "unnormalised", "noise-too-small", "diagonal-only"}
    fedrec = rows["fedrec"]
    assert fedrec["verdict"] == "holds", fedrec["audit"]
    assert fedrec["audit"]["epsilon_lower_bound"] <= fedrec["run_epsilon"] <= 1.0
    assert fedrec["clients"] == 100 + 400  # excluded canaries take part with no items
    for control in ("noise-too-small", "diagonal-only"):
        row = rows[control]
        assert row["verdict"] == "caught", (control, row["audit"])
        assert row["audit"]["epsilon_lower_bound"] > row["claimed_epsilon"]
    # The claim the controls are held to is the product's, at the audit's δ.
    assert len({r["claimed_epsilon"] for r in rows.values()}) == 1


def test_the_release_audit_refuses_what_it_cannot_audit() -> None:
    users, n = _background()
    canaries = draw_canaries(n, 10, 3, np.random.default_rng(1))
    cfg = resolve_config({}, {})
    common = {"epsilon": 1.0, "background": users, "n_items": n, "canaries": canaries}
    with pytest.raises(ValueError, match="placement"):
        release_audit(cfg, placement="local", included=np.ones(10, bool), **common)
    with pytest.raises(ValueError, match="inclusion bits"):
        release_audit(cfg, placement="central", included=np.ones(9, bool), **common)
    with pytest.raises(ValueError, match="control"):
        release_audit(cfg, placement="central", included=np.ones(10, bool), control="x", **common)


def test_the_background_keeps_the_most_rated_items(tmp_path: Path) -> None:
    rows = ["user,item,rating,timestamp"]
    for u in range(6):
        rows += [f"{u},{i},4,{100 * u + i}" for i in range(u + 3)]  # item 0 most rated
    (tmp_path / "items.csv").write_text(
        "item,title,genres\n" + "".join(f"{i},Item {i},Drama\n" for i in range(9))
    )
    (tmp_path / "ratings.csv").write_text("\n".join(rows) + "\n")
    cfg = resolve_config(
        {}, {"dataset": "generic", "data-path": str(tmp_path / "ratings.csv"), "text-tower": "off"}
    )
    full, n_full = training_background(cfg, None)
    kept, n = training_background(cfg, 3)
    assert n == 3 and len(kept) == len(full)
    assert all(k.size and k.max() < 3 for k in kept)
    assert sum(k.size for k in kept) <= sum(f.size for f in full) and n_full >= 3


def test_the_report_renders_the_section_only_when_the_result_has_it(arm: dict) -> None:
    result = json.loads((REPORTS / "privacy-audit.json").read_text())
    result.pop("cooccurrence", None)
    without = markdown_report(result)
    assert "co-occurrence release" not in without
    text = markdown_report({**result, "cooccurrence": arm})
    assert text.startswith(without) and "## The private co-occurrence release" in text
    assert text.count("\n| secagg | ") == 4 and "\n| central | fedrec |" in text
    assert "\n".join(markdown_section(arm)) in text
