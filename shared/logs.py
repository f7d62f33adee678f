"""fedrec's log lines in processes fedrec does not start itself.

In deployment Flower starts the ServerApp (``flwr-serverapp``) and each ClientApp
(``flwr-clientapp``) in processes of its own, and configures only its own logger
(``flwr``). What an operator sees there — ``flwr log``, ``flwr run --stream``, a
SuperNode's output — is what those processes write to stdout and stderr (Flower mirrors
the ServerApp's output to the SuperLink). There fedrec's loggers inherit the root
logger's level, WARNING, so Python drops their INFO lines: the per-round line, resume
decisions, the clients' devices. :func:`show_fedrec_logs` gives the ``fedrec`` logger a
handler and a level of its own there.
"""

from __future__ import annotations

import logging
import sys

ROOT_LOGGER = "fedrec"


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the ``sys.stdout`` of the moment (Flower swaps and wraps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


class _FedrecHandler(_StdoutHandler):
    """Marks the handler :func:`show_fedrec_logs` attached, so it attaches only one."""


def show_fedrec_logs(level: int = logging.INFO) -> bool:
    """Send fedrec's records of ``level`` and above to stdout, unless they are shown already.

    Does nothing (returns ``False``) when records of ``level`` already reach a handler
    (``fedrec simulate`` and the other CLI commands set up their own) or when called
    before in this process.
    """
    logger = logging.getLogger(ROOT_LOGGER)
    if any(isinstance(h, _FedrecHandler) for h in logger.handlers):
        return False
    if logger.isEnabledFor(level) and logger.hasHandlers():
        return False
    handler = _FedrecHandler()
    # The same shape as Flower's own lines, so the two read as one log.
    handler.setFormatter(logging.Formatter("%(levelname)-8s: fedrec: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    # The root logger's handler there is the one importing Opacus adds (basicConfig on
    # stderr); passing records on to it would print every line twice.
    logger.propagate = False
    return True
