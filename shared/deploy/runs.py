"""Submitting a run with Flower's CLI and telling whether it succeeded.

``flwr run`` exits 0 once the SuperLink has accepted a run, whatever becomes of the run,
and ``flwr log`` exits 0 when the logs end. The run's outcome is its status in ``flwr ls
--format json``: ``finished:completed``, ``finished:failed`` or ``finished:stopped``.
:func:`submit` and :func:`follow` submit, stream the logs, then read that status, so the
operator's command can exit non-zero when the run failed, and submit a run again whose
ServerApp was lost with its SuperLink (the new ServerApp resumes from the checkpoint).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fedrec.shared.errors import FedRecError

COMPLETED = "finished:completed"
FAILED = "finished:failed"
# Flower's details when a run's ServerApp stopped sending heartbeats: it died with its
# SuperLink (or machine), not because of anything in the run.
LOST_SERVERAPP = "No heartbeat received"


class DeployError(FedRecError):
    """Flower's CLI refused a request, or its answer could not be read."""


@dataclass(frozen=True)
class RunOutcome:
    """A run's final status as the SuperLink reports it."""

    run_id: int
    status: str  # e.g. finished:completed
    details: str = ""

    @property
    def ok(self) -> bool:
        """Whether the run completed (not failed, not stopped)."""
        return self.status == COMPLETED

    @property
    def finished(self) -> bool:
        """Whether the run has ended, one way or another."""
        return self.status.startswith("finished")

    @property
    def lost(self) -> bool:
        """Whether the run failed because its ServerApp process was lost, not by itself."""
        return self.status == FAILED and LOST_SERVERAPP in self.details


def _json_of(stdout: str) -> dict[str, Any] | None:
    """The JSON object Flower's CLI prints with ``--format json`` (after any other line)."""
    start = stdout.find("{")
    while start >= 0:
        try:
            value = json.loads(stdout[start:])
        except json.JSONDecodeError:
            start = stdout.find("{", start + 1)
            continue
        return value if isinstance(value, dict) else None
    return None


def submit(
    app: str,
    superlink: str,
    *,
    run_config: str | None = None,
    flwr: str = "flwr",
    env: Mapping[str, str] | None = None,
) -> int:
    """``flwr run APP SUPERLINK --format json``: the new run's id."""
    cmd = [flwr, "run", app, superlink, "--format", "json"]
    if run_config:
        cmd += ["--run-config", run_config]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    payload = _json_of(out.stdout)
    if out.returncode != 0 or payload is None or not payload.get("success"):
        why = (payload or {}).get("error-message") or (out.stderr or out.stdout).strip()
        raise DeployError(f"`flwr run` did not start the run (exit {out.returncode}): {why}")
    return int(payload["run-id"])


def status(
    run_id: int, superlink: str, *, flwr: str = "flwr", env: Mapping[str, str] | None = None
) -> RunOutcome:
    """``flwr ls SUPERLINK --run-id RUN_ID --format json``: the run's status now."""
    cmd = [flwr, "ls", superlink, "--run-id", str(run_id), "--format", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    payload = _json_of(out.stdout)
    runs = (payload or {}).get("runs") or []
    if out.returncode != 0 or not runs:
        why = (payload or {}).get("error-message") or (out.stderr or out.stdout).strip()
        raise DeployError(f"`flwr ls` gave no status for run {run_id}: {why}")
    row = runs[0]
    details = str(row.get("status-details") or "")
    return RunOutcome(run_id, str(row.get("status", "")), "" if details == "N/A" else details)


def follow(
    run_id: int,
    superlink: str,
    *,
    flwr: str = "flwr",
    env: Mapping[str, str] | None = None,
    stream: bool = True,
    poll_seconds: float = 2.0,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunOutcome:
    """Stream the run's logs (``flwr log RUN_ID SUPERLINK --stream``) until it finishes.

    The stream can end before the run does (the SuperLink went away): the status is then
    polled every ``poll_seconds`` until the run has finished or ``timeout`` passed, and a
    SuperLink that cannot be reached counts as "not finished yet".
    """
    if stream:
        subprocess.run([flwr, "log", str(run_id), superlink, "--stream"], env=env)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            outcome = status(run_id, superlink, flwr=flwr, env=env)
        except DeployError:
            outcome = RunOutcome(run_id, "unknown")
        if outcome.finished:
            return outcome
        if deadline is not None and time.monotonic() >= deadline:
            raise DeployError(f"run {run_id} has not finished after {timeout:.0f} s")
        sleep(poll_seconds)
