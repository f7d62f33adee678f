"""Which simulations train their users on worker nodes, and which keep one user per node."""

import json
import os
import subprocess
import sys

import pytest

from fedrec.server.cohorts import SimulatedUsers
from fedrec.shared.config import resolve_config
from fedrec.simulation.faults import FaultConfig
from fedrec.simulation.runner import GPU_DEVICE_FILES, simulated_users


def test_by_default_the_users_are_split_over_one_worker_per_core() -> None:
    cfg = resolve_config({}, {})
    assert simulated_users(cfg, 943, FaultConfig(), workers=2) == SimulatedUsers(943, 2, 0)
    # Never more workers than users.
    assert simulated_users(cfg, 3, FaultConfig(), workers=8) == SimulatedUsers(3, 3, 0)
    capped = resolve_config({}, {"simulation-users-per-message": 50})
    assert simulated_users(capped, 943, FaultConfig(), workers=2) == SimulatedUsers(943, 2, 50)


def test_secagg_falls_back_to_one_user_per_node_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = resolve_config({}, {"user-dp": "secagg"})
    with caplog.at_level("INFO", logger="fedrec"):
        assert simulated_users(cfg, 10, FaultConfig(), workers=2) is None
    (line,) = [r.getMessage() for r in caplog.records if r.name.startswith("fedrec")]
    assert line.startswith("one SuperNode per user:") and "SecAgg+ party" in line


@pytest.mark.parametrize(
    ("settings", "faults"),
    [
        ({"simulation-users-per-message": 1}, FaultConfig()),  # asked for
        ({"model": "cooccurrence"}, FaultConfig()),  # its release has its own messages
        ({}, FaultConfig(failure_rate=0.2)),  # faults are drawn per node
    ],
)
def test_one_user_per_node_when_asked_or_needed(
    settings: dict[str, object], faults: FaultConfig
) -> None:
    assert simulated_users(resolve_config({}, settings), 10, faults, workers=2) is None


def test_the_server_process_loads_no_training_code() -> None:
    # `fedrec simulate`'s own process runs the server and hands the ClientApp to the
    # engine: it never trains, so torch and Opacus (most of a process's memory) stay out.
    heavy = ("torch", "opacus", "transformers", "peft", "fastapi", "scipy.stats")
    code = (
        "import sys, json; import fedrec.simulation.runner, fedrec.server.server_app; "
        "from fedrec.simulation.runner import backend_config, build_client_app; "
        "build_client_app({}); backend_config(); "
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Only with a GPU driver present is torch asked whether CUDA works.
    allowed = {"torch"} if any(os.path.exists(f) for f in GPU_DEVICE_FILES) else set()
    assert set(json.loads(out.stdout)) <= allowed
