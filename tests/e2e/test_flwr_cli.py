"""`flwr run .` (Flower's own CLI, local SuperLink, simulation engine) runs the same apps."""

import shutil
from pathlib import Path

import psutil
import pytest

from fedrec.shared.checkpoint import load_checkpoint

from .helpers import BIN, ROOT, flwr_env, flwr_run, write_tiny_ratings

pytestmark = pytest.mark.slow


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
    data = write_tiny_ratings(tmp_path / "ratings.csv", n_users=6, n_items=20, per_user=10)
    runs = tmp_path / "runs"
    env = flwr_env(flwr_home)
    run_config = (
        f"num-rounds=2 dataset='generic' data-path='{data}' output-dir='{runs}' "
        "run-name='flwr-cli' fraction-train=0.7 embedding-dim=8 personalize-epochs=1 "
        "federated-evaluation='on'"  # under DP only when asked for: it runs on every client
    )
    try:
        out = flwr_run("fedrec-test", run_config, env)
    finally:
        _stop_superlinks(flwr_home)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ckpt = load_checkpoint(runs / "flwr-cli")
    assert ckpt.round == 2
    assert ckpt.manifest["privacy"]["unit"] == "record"
    assert "NOT covered: federated-evaluation metrics" in ckpt.manifest["privacy"]["covers"]
    assert ckpt.manifest["history"][-1]["eval/n_users"] == 6
    # Flower found no legacy connection settings to migrate out of pyproject.toml.
    assert not (ROOT / "pyproject.toml").read_text().count("CONFIGURATION MIGRATION NOTICE")
