"""`flwr run .` (Flower's own CLI, local SuperLink, simulation engine) runs the same apps."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

from fedrec.shared.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tiny_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(6):
        for t, i in enumerate(rng.choice(20, 10, replace=False)):
            rows.append(f"{u},{i},{int(rng.integers(1, 6))},{1000 + t}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _stop_superlinks(flwr_home: Path) -> None:
    """Stop the local SuperLink `flwr run` started for this test (it detaches)."""
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "flower-superlink" in " ".join(proc.info["cmdline"] or []) and proc.environ().get(
                "FLWR_HOME"
            ) == str(flwr_home):
                proc.kill()
        except psutil.Error:
            continue


@pytest.mark.skipif(shutil.which("flwr", path=str(BIN)) is None, reason="flwr CLI not installed")
def test_flwr_run_local_simulation(tmp_path: Path) -> None:
    flwr_home = tmp_path / "flwr-home"
    flwr_home.mkdir()
    # A SuperLink connection of our own; the user's ~/.flwr is never touched.
    (flwr_home / "config.toml").write_text(
        '[superlink]\ndefault = "fedrec-test"\n\n'
        '[superlink.fedrec-test]\naddress = ":local:"\n'
        "options.num-supernodes = 3\noptions.backend.client-resources.num-cpus = 1\n"
    )
    data = _tiny_csv(tmp_path / "ratings.csv")
    runs = tmp_path / "runs"
    env = {
        **os.environ,
        "FLWR_HOME": str(flwr_home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # Use this environment as is; Flower would otherwise `uv sync` the app's
        # dependencies into a fresh env per run (and fetch a CUDA torch).
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }
    run_config = (
        f"num-rounds=2 dataset='generic' data-path='{data}' output-dir='{runs}' "
        "run-name='flwr-cli' fraction-train=0.7 embedding-dim=8 personalize-epochs=1"
    )
    try:
        out = subprocess.run(
            [str(BIN / "flwr"), "run", ".", "fedrec-test", "--stream", "--run-config", run_config],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        _stop_superlinks(flwr_home)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ckpt = load_checkpoint(runs / "flwr-cli")
    assert ckpt.round == 2
    assert ckpt.manifest["privacy"]["unit"] == "record"
    assert ckpt.manifest["history"][-1]["eval/n_users"] == 6
    # Flower found no legacy connection settings to migrate out of pyproject.toml.
    assert not (ROOT / "pyproject.toml").read_text().count("CONFIGURATION MIGRATION NOTICE")
