"""Shared fixtures: a Flower task identity and an in-process loopback Grid."""

import logging
from collections.abc import Iterable

import pytest

from fedrec.simulations.loopback import LoopbackGrid, outside_flower


@pytest.fixture(autouse=True)
def fedrec_logger() -> Iterable[None]:
    """Undo what a ClientApp or ServerApp did to the ``fedrec`` logger (shared/logs.py)."""
    logger = logging.getLogger("fedrec")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def task_identity() -> Iterable[None]:
    """Messages are built outside a running Flower task here; give them an identity."""
    with outside_flower():
        yield


@pytest.fixture
def loopback_grid(task_identity: None) -> type[LoopbackGrid]:
    """The :class:`LoopbackGrid` class (tests build one per ClientApp)."""
    return LoopbackGrid
