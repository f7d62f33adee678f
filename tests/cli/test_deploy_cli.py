"""`fedrec deploy run` and `fedrec node start`, over a stand-in for Flower's CLI.

The stand-in `flwr` answers `run`, `log` and `ls` the way Flower 1.42's CLI does with
`--format json` (the real CLI, against a real SuperLink: tests/e2e/test_deployment_engine.py).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fedrec.cli.main import app

FAKE_FLWR = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_FLWR_CALLS"], "a") as f:
    f.write(json.dumps(args) + "\\n")
# Run k (42, 43, ...) ends with the k-th of FAKE_STATUS's ";"-separated "status|details".
if args[0] == "run":
    runs = os.environ["FAKE_FLWR_CALLS"] + ".runs"
    n = int(open(runs).read()) if os.path.exists(runs) else 0
    open(runs, "w").write(str(n + 1))
    print("Using SuperLink: test (127.0.0.1:1)")
    print(json.dumps({{"success": True, "run-id": str(42 + n), "federation-id": ""}}))
elif args[0] == "log":
    print("INFO    : fedrec: round 1/1 | clients 2 ok/0 failed/0 rejected")
elif args[0] == "ls":
    status, details = os.environ["FAKE_STATUS"].split(";")[int(args[3]) - 42].split("|")
    run = {{"run-id": args[3], "status": status, "status-details": details}}
    print(json.dumps({{"success": True, "runs": [run]}}))
"""


@pytest.fixture
def fake_flwr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    flwr = bin_dir / "flwr"
    flwr.write_text(FAKE_FLWR.format(python=sys.executable))
    flwr.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_FLWR_CALLS", str(tmp_path / "calls"))
    return tmp_path / "calls"


@pytest.mark.parametrize(
    ("status", "code"),
    [("finished:completed", 0), ("finished:failed", 1), ("finished:stopped", 1)],
)
def test_deploy_run_exits_non_zero_unless_the_run_completed(
    fake_flwr: Path, monkeypatch: pytest.MonkeyPatch, status: str, code: int
) -> None:
    monkeypatch.setenv("FAKE_STATUS", f"{status}|why")
    result = CliRunner().invoke(app, ["deploy", "run", "prod", "--run-config", "num-rounds=1"])
    assert result.exit_code == code, result.output
    assert f"run 42: {status} (why)" in result.output
    calls = [json.loads(line) for line in fake_flwr.read_text().splitlines()]
    assert calls == [
        ["run", ".", "prod", "--format", "json", "--run-config", "num-rounds=1"],
        ["log", "42", "prod", "--stream"],
        ["ls", "prod", "--run-id", "42", "--format", "json"],
    ]


def test_a_run_that_lost_its_serverapp_is_submitted_again_and_a_failed_one_is_not(
    fake_flwr: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run 42 lost its ServerApp with the SuperLink, 43 (its resubmission) completed.
    lost = "finished:failed|No heartbeat received from the task"
    monkeypatch.setenv("FAKE_STATUS", f"{lost};finished:completed|N/A")
    result = CliRunner().invoke(app, ["deploy", "run", "prod", "--no-stream"])
    assert result.exit_code == 0, result.output
    assert "run 42 lost its ServerApp; submitting it again" in result.output
    assert result.output.rstrip().endswith("run 43: finished:completed")
    # A run that failed by itself is not submitted again; nor past --resubmit.
    for status, flags in [("finished:failed|ValueError", []), (lost, ["--resubmit", "0"])]:
        fake_flwr.unlink()
        Path(f"{fake_flwr}.runs").unlink()
        monkeypatch.setenv("FAKE_STATUS", f"{status};finished:completed|N/A")
        result = CliRunner().invoke(app, ["deploy", "run", "prod", "--no-stream", *flags])
        assert result.exit_code == 1, result.output
        assert sum(json.loads(c)[0] == "run" for c in fake_flwr.read_text().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_node_start_refuses_a_device_the_node_lacks_before_starting_anything(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "started"
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "fedrec"), "node", "start", "--",
            sys.executable, "-c", f"open({str(marker)!r}, 'w')",
            "--node-config", "partition-id=0 num-partitions=2 device='cuda'",
        ],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and not marker.exists()
    assert "device='cuda'" in out.stdout and "restart the SuperNode" in out.stdout


def test_node_start_restarts_a_failing_supernode_then_passes_on_its_status(
    tmp_path: Path,
) -> None:
    count = tmp_path / "count"
    script = (
        f"import pathlib, sys; p = pathlib.Path({str(count)!r}); "
        "n = int(p.read_text()) if p.exists() else 0; p.write_text(str(n + 1)); "
        "sys.exit(1 if n < 1 else 0)"
    )
    result = CliRunner().invoke(
        app, ["node", "start", "--backoff", "0.01", "--", sys.executable, "-c", script]
    )
    assert result.exit_code == 0, result.output
    assert count.read_text() == "2"
    assert "restart 1 in 0.01 s" in result.output
