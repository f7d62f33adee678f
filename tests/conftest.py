"""Shared fixtures: a Flower task identity and an in-process loopback Grid."""

import copy
import logging
import uuid
from collections.abc import Iterable

import pytest
from flwr.app import Context, Message, RecordDict
from flwr.app.error import Error
from flwr.clientapp import ClientApp
from flwr.supercore.task_identity import TaskIdentity


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
    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0
    yield
    TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved


class LoopbackGrid:
    """A Grid that delivers each message to ``app`` in-process, no Ray and no network.

    Each message is copied (the real transport serializes it) and each node keeps its
    Context across messages, which is all Flower's SecAgg+ stages need; an exception in the
    app becomes an error reply, as in Flower's runtime. Every reply is kept in ``replies``,
    so tests can check what the server actually received.
    """

    def __init__(self, app: ClientApp, n: int, node_config: bool = False) -> None:
        self.app = app
        self.contexts = {
            nid: Context(
                run_id=1,
                node_id=nid,
                node_config={"partition-id": nid - 1, "num-partitions": n} if node_config else {},
                state=RecordDict(),
                run_config={},
            )
            for nid in range(1, n + 1)
        }
        self.replies: list[Message] = []

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        out = []
        for sent in messages:
            # Flower's grid sets the id on the message pushed, so the server can match replies.
            sent.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            msg = copy.deepcopy(sent)
            try:
                reply = self.app(msg, self.contexts[msg.metadata.dst_node_id])
            except Exception as err:  # noqa: BLE001 - what Flower's runtime does too
                reply = Message(Error(code=0, reason=repr(err)), reply_to=msg)
            out.append(reply)
        self.replies += out
        return out


@pytest.fixture
def loopback_grid(task_identity: None) -> type[LoopbackGrid]:
    """The :class:`LoopbackGrid` class (tests build one per ClientApp)."""
    return LoopbackGrid
