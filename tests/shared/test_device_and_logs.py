"""Device choice from a node config, and fedrec's log lines in Flower's own processes."""

import logging

import pytest
import torch

from fedrec.shared.device import device_code, device_label, node_device, resolve_device
from fedrec.shared.errors import ConfigError, NodeConfigError
from fedrec.shared.logs import show_fedrec_logs


def test_auto_and_cpu_resolve_and_the_reported_code_reads_back() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert node_device({}) == resolve_device("auto")
    assert device_label(device_code(torch.device("cpu"))) == "cpu"
    assert device_label(1.0) == "cuda:1"


@pytest.mark.parametrize("preference", ["tpu", "cuda:x", "meta"])
def test_an_unknown_device_is_refused(preference: str) -> None:
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device(preference)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_node_is_a_node_config_error_that_says_the_fix() -> None:
    with pytest.raises(NodeConfigError, match=r"device='cuda'.*not available.*restart"):
        node_device({"device": "cuda"})


def test_fedrec_lines_reach_stdout_where_nothing_else_shows_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare: a process like flwr-serverapp, where the root logger is at WARNING (the
    # conftest puts the fedrec logger back afterwards).
    logger = logging.getLogger("fedrec")
    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)
    # Execute
    attached = show_fedrec_logs()
    again = show_fedrec_logs()
    logging.getLogger("fedrec.server.server_app").info("round 1/2 | clients 2 ok")
    # Assert: one handler, the line on stdout in Flower's shape.
    assert attached and not again and len(logger.handlers) == 1 and not logger.propagate
    assert "INFO    : fedrec: round 1/2 | clients 2 ok" in capsys.readouterr().out


def test_nothing_is_attached_where_a_handler_already_shows_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # pytest's handler on the root logger at INFO stands for the CLI's setup_logging.
    with caplog.at_level(logging.INFO):
        assert not show_fedrec_logs()
    assert not logging.getLogger("fedrec").handlers
