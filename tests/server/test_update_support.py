"""No leakage through sparsity: which item rows change must not reveal the items a user touched.

Local training without record-level DP changes only the rows of items a client saw
(positives and the negatives drawn for them): the raw update's support *is* the user's
history. Under user-level DP every row of what leaves the client (local, secagg) or what
the server publishes (central) is noised, and the rows the client never touched change just
like the touched ones. Runs one real round of fedrec's client and server through the
loopback Grid (conftest.py), record-level DP off so only user-level noise can hide it.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fedrec.client.client_app as client_app_module
import fedrec.client.replies as replies_module
import fedrec.client.task as task_module
from fedrec.server.server_app import run_federation
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import resolve_config

pytestmark = pytest.mark.usefixtures("task_identity")  # see conftest.py

N_USERS, N_ITEMS = 4, 200


def _data(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(N_USERS):
        for t, i in enumerate(rng.choice(N_ITEMS, 8, replace=False)):
            rows.append(f"{u},{i},4,{1000 + t}")
    (folder / "items.csv").write_text(
        "item,title,genres\n" + "".join(f"{i},Item {i},Drama\n" for i in range(N_ITEMS))
    )
    path = folder / "ratings.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _run(tmp_path: Path, loopback_grid: type, monkeypatch: pytest.MonkeyPatch, placement: str):  # type: ignore[no-untyped-def]
    raw: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
    sent: list[dict[str, np.ndarray]] = []
    train, noised = task_module.local_train, replies_module.noised_update

    def recording_train(cfg: Any, data: Any, shared: Any, *args: Any, **kwargs: Any) -> Any:
        updated, result = train(cfg, data, shared, *args, **kwargs)
        raw.append((shared, updated))
        return updated, result

    def recording_noised(*args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        out = noised(*args, **kwargs)
        sent.append(out)
        return out

    monkeypatch.setattr(task_module, "local_train", recording_train)
    monkeypatch.setattr(replies_module, "noised_update", recording_noised)
    settings = {
        "dataset": "generic",
        "data-path": str(_data(tmp_path)),
        "num-rounds": 1,
        "embedding-dim": 4,
        "local-epochs": 1,
        "num-negatives": 1,
        "fraction-evaluate": 0.0,
        "final-evaluate-all": False,
        "dp-enabled": False,
        "reproducible-noise": True,  # for the test only (never in a real run)
        "user-dp": placement,
        "user-delta": 1e-3,
        "min-available-nodes": N_USERS,
        "output-dir": str(tmp_path / "runs"),
        "run-name": placement,
    }
    app = client_app_module.build_client_app(settings)
    run_dir = run_federation(
        loopback_grid(app, N_USERS, node_config=True), resolve_config({}, settings)
    )
    return raw, sent, load_checkpoint(run_dir).tensors


def _untouched(shared: dict[str, np.ndarray], updated: dict[str, np.ndarray]) -> np.ndarray:
    """Rows of the item table the client's own training left exactly as they were."""
    same = np.all(updated["item_factors"] == shared["item_factors"], axis=1)
    return same & (updated["item_bias"] == shared["item_bias"])


def _rms(rows: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(rows.astype(np.float64)))))


@pytest.mark.parametrize("placement", ["local", "secagg"])
def test_every_row_a_client_sends_is_noised_like_the_rows_it_touched(
    tmp_path: Path, loopback_grid: type, monkeypatch: pytest.MonkeyPatch, placement: str
) -> None:
    raw, sent, _ = _run(tmp_path, loopback_grid, monkeypatch, placement)
    assert len(raw) == len(sent) == N_USERS
    untouched_rows, touched_rows = [], []
    for (shared, updated), out in zip(raw, sent, strict=True):
        untouched = _untouched(shared, updated)
        # Without user-level noise the update's support is the user's items.
        assert 100 < untouched.sum() < N_ITEMS
        delta = out if placement == "secagg" else {k: out[k] - shared[k] for k in out}
        table = np.column_stack([delta["item_factors"], delta["item_bias"]])
        assert np.all(table != 0), "a row left unchanged would reveal an untouched item"
        untouched_rows.append(table[untouched])
        touched_rows.append(table[~untouched])
    # The noise is what everyone sees on every row: untouched rows move as much as touched
    # ones (the clipped signal, norm <= 1 over all tensors, is small next to it).
    std = 1.0 if placement == "local" else 1.0 / np.sqrt(3)  # σC; σC/sqrt(t), t = 3 of 4
    assert _rms(np.vstack(untouched_rows)) == pytest.approx(std, rel=0.05)
    assert _rms(np.vstack(touched_rows)) == pytest.approx(std, rel=0.15)


def test_the_centrally_noised_model_moves_every_row(
    tmp_path: Path, loopback_grid: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, sent, published = _run(tmp_path, loopback_grid, monkeypatch, "central")
    assert not sent  # the clients send raw updates to the (trusted) server
    shared = raw[0][0]
    untouched_by_all = np.logical_and.reduce([_untouched(s, u) for s, u in raw])
    assert untouched_by_all.sum() > 100
    change = np.column_stack(
        [
            published["item_factors"] - shared["item_factors"],
            published["item_bias"] - shared["item_bias"],
        ]
    )
    assert np.all(change != 0)
    assert _rms(change[untouched_by_all]) == pytest.approx(_rms(change[~untouched_by_all]), rel=0.3)
