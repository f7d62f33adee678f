"""The privacy audit fails a broken mechanism and passes fedrec's, on a small federation.

Slow: it trains every canary client three times (the replay attacker). The controls are the
mechanisms this project shipped before the audit existed -- the noised sum divided by the
client's own record count, and noise drawn from public seeds -- so this is the test that
"would catch the violation" of every record-level claim.
"""

from pathlib import Path

import numpy as np
import pytest

from fedrec.shared.config import resolve_config
from fedrec.simulations.bench_audit import (
    _background_updates,
    record_audit,
    run_privacy_audit,
    user_audit,
    verdict,
)

pytestmark = pytest.mark.slow


def _ratings(folder: Path, n_users: int = 200, n_items: int = 150) -> Path:
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(n_users):
        chosen = rng.choice(n_items, int(rng.integers(3, 9)), replace=False)
        rows += [f"{u},{i},4,{1000 + t}" for t, i in enumerate(chosen)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.csv").write_text(
        "item,title,genres\n" + "".join(f"{i},Item {i},Drama\n" for i in range(n_items))
    )
    (folder / "ratings.csv").write_text("\n".join(rows) + "\n")
    return folder / "ratings.csv"


def _cfg(tmp_path: Path, **extra: object):  # type: ignore[no-untyped-def]
    return resolve_config(
        {},
        {
            "dataset": "generic",
            "data-path": str(_ratings(tmp_path / "data")),
            "text-tower": "off",
            "embedding-dim": 8,
            "dp-noise-multiplier": 6.0,
            "user-noise-multiplier": 2.0,
            "output-dir": str(tmp_path / "runs"),
            **extra,
        },
    )


@pytest.mark.parametrize(
    ("control", "expected"),
    [(None, "holds"), ("count-normalised", "caught"), ("public-seed", "caught")],
)
def test_record_level_audit_catches_the_old_mechanisms_and_passes_the_new(
    tmp_path: Path, control: str | None, expected: str
) -> None:
    row = record_audit(_cfg(tmp_path), canaries=200, control=control)
    assert verdict(row) == expected, row["audit"]
    if expected == "holds":
        assert row["audit"]["epsilon_lower_bound"] <= row["claimed_epsilon"]


@pytest.mark.parametrize("placement", ["central", "secagg", "local"])
def test_user_level_audit_catches_too_little_noise(tmp_path: Path, placement: str) -> None:
    cfg = _cfg(tmp_path)
    updates, shared = _background_updates(cfg, 50, 0)
    for control, expected in ((None, "holds"), ("noise-too-small", "caught")):
        row = user_audit(
            cfg,
            placement=placement,
            canaries=600,
            background=updates,
            shared=shared,
            control=control,
        )
        assert verdict(row) == expected, (control, row["audit"])


def test_the_audit_command_writes_its_report(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    overrides = {k: v for k, v in cfg.to_run_config().items()}
    result = run_privacy_audit(
        overrides=overrides,
        output_dir=tmp_path / "out",
        name="audit",
        record_canaries=40,
        user_canaries=100,
        background=10,
        placements=["central"],
        controls=False,
    )
    assert [r["mechanism"] for r in result["rows"]] == ["fedrec", "fedrec"]
    text = (tmp_path / "out" / "audit.md").read_text()
    assert text.count("| fedrec |") == 2 and (tmp_path / "out" / "audit.json").exists()
