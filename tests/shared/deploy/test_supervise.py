"""The restart loop around a daemon: back-off, the limit, and a clean exit ends it."""

import sys
from pathlib import Path

import pytest

from fedrec.shared.deploy.supervise import Backoff, supervise


def _failing(tmp_path: Path, failures: int) -> list[str]:
    """A command that exits 1 its first ``failures`` times, then 0 (counted in a file)."""
    count = tmp_path / "count"
    script = (
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(count)!r})\n"
        "n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        f"sys.exit(1 if n < {failures} else 0)\n"
    )
    return [sys.executable, "-c", script]


def test_restarts_double_the_wait_up_to_the_cap_until_the_process_succeeds(
    tmp_path: Path,
) -> None:
    waits: list[float] = []
    lines: list[str] = []
    status = supervise(
        _failing(tmp_path, 4),
        backoff=Backoff(first=1.0, most=3.0),
        notify=lines.append,
        sleep=waits.append,
    )
    assert status == 0 and waits == [1.0, 2.0, 3.0, 3.0]
    assert (tmp_path / "count").read_text() == "5"
    assert lines[0].endswith("exited with status 1; restart 1 in 1 s")


def test_the_restart_limit_returns_the_last_failure(tmp_path: Path) -> None:
    waits: list[float] = []
    status = supervise(_failing(tmp_path, 10), max_restarts=2, sleep=waits.append)
    assert status == 1 and len(waits) == 2 and (tmp_path / "count").read_text() == "3"


def test_a_process_that_ran_a_while_starts_the_back_off_over(tmp_path: Path) -> None:
    # Each run "takes" 100 s on this clock: longer than `stable`, so every wait is the first.
    ticks = iter(range(0, 10_000, 100))
    waits: list[float] = []
    supervise(
        _failing(tmp_path, 3),
        backoff=Backoff(first=1.0, most=60.0, stable=60.0),
        sleep=waits.append,
        clock=lambda: float(next(ticks)),
    )
    assert waits == [1.0, 1.0, 1.0]


def test_an_impossible_back_off_is_refused() -> None:
    with pytest.raises(ValueError, match="back-off"):
        Backoff(first=5.0, most=1.0)
