"""Every report under docs/benchmarks/ re-renders byte-for-byte from its JSON."""

import json
from pathlib import Path

import pytest

from fedrec.simulations.report import REPORTS, kind_of, render, render_only

DOCS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
STEMS = sorted(p.stem for p in DOCS.glob("*.json"))


def test_every_committed_report_is_rendered_by_one_kind() -> None:
    assert STEMS, f"no benchmark JSON under {DOCS}"
    assert {kind_of(stem) for stem in STEMS} == set(REPORTS)


@pytest.mark.parametrize("stem", STEMS)
def test_report_matches_its_committed_markdown(stem: str, tmp_path: Path) -> None:
    result = json.loads((DOCS / f"{stem}.json").read_text())

    written = render(result, tmp_path, stem)

    assert written.read_text() == (DOCS / f"{stem}.md").read_text()
    if REPORTS[kind_of(stem)].plot and f"({stem}.png)" in written.read_text():
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000


def test_a_stem_without_a_renderer_is_refused() -> None:
    with pytest.raises(KeyError, match="no report renders"):
        kind_of("no-such-report")


def test_render_only_needs_the_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="run the benchmark first"):
        render_only(tmp_path, "quality")
