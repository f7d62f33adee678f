"""What benchmarks and tests on 127.0.0.1 share: ports, process trees, data, an in-process Grid.

Free ports, process trees and a tiny data set for the runs on loopback; and a Grid that
delivers messages to a ClientApp in this very process (:class:`LoopbackGrid`), for tests
and for profiling a round without Ray.
"""

from __future__ import annotations

import contextlib
import copy
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import psutil
from flwr.app import Context, Message, RecordDict
from flwr.app.error import Error
from flwr.clientapp import ClientApp
from flwr.supercore.task_identity import TaskIdentity


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def process_tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and its descendants, children first; none if it is gone."""
    try:
        proc = psutil.Process(pid)
        return [*proc.children(recursive=True), proc]
    except psutil.NoSuchProcess:
        return []


def kill_trees(popens: Sequence[subprocess.Popen[bytes]]) -> None:
    """Kill each started process and everything it started, and wait for them all.

    Whole trees: a wrapper such as ``fedrec node start`` cannot pass a SIGKILL on to its
    SuperNode, and a SuperNode's ClientApps outlive it otherwise.
    """
    everything = [proc for popen in popens for proc in process_tree(popen.pid)]
    for proc in everything:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(everything, timeout=30)
    for popen in popens:
        popen.wait(timeout=30)


def write_tiny_ratings(path: Path, *, n_users: int, n_items: int, per_user: int) -> Path:
    """A seeded ``user,item,rating,timestamp`` CSV where every user has a test item."""
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(n_users):
        for t, i in enumerate(rng.choice(n_items, per_user, replace=False)):
            rows.append(f"{u},{i},{int(rng.integers(1, 6))},{1000 + t}")
    path.write_text("\n".join(rows) + "\n")
    return path


@contextlib.contextmanager
def outside_flower() -> Iterator[None]:
    """A task identity for messages built outside a running Flower task (then restored)."""
    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0
    try:
        yield
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved


class LoopbackGrid:
    """A Grid that delivers each message to ``app`` in-process, no Ray and no network.

    Each message is copied (the real transport serializes it) and each node keeps its
    Context across messages, which is all Flower's SecAgg+ stages need; an exception in the
    app becomes an error reply, as in Flower's runtime. Every reply is kept in ``replies``,
    so tests can check what the server actually received. ``push_messages`` stores, and
    ``pull_messages`` answers, the way fedrec's windowed sending uses a grid; ``most_stored``
    is the most messages ever stored unanswered.
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
        self.stored: dict[str, Message] = {}
        self.most_stored = 0

    def get_node_ids(self) -> Iterable[int]:
        """Every node's id, as Flower's Grid answers."""
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        """Store copies of ``messages`` for their nodes; their ids."""
        ids = []
        for sent in messages:
            # Flower's grid sets the id on the message pushed, so the server can match replies.
            sent.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            self.stored[sent.metadata.message_id] = copy.deepcopy(sent)
            ids.append(sent.metadata.message_id)
        self.most_stored = max(self.most_stored, len(self.stored))
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        """The replies to the stored messages among ``message_ids`` (each answered once)."""
        out = []
        for mid in list(message_ids):
            msg = self.stored.pop(mid, None)
            if msg is None:
                continue
            try:
                reply = self.app(msg, self.contexts[msg.metadata.dst_node_id])
            except Exception as err:  # noqa: BLE001 - what Flower's runtime does too
                reply = Message(Error(code=0, reason=repr(err)), reply_to=msg)
            out.append(reply)
        self.replies += out
        return out

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        """Each message to its node's app, one after the other; their replies."""
        return self.pull_messages(self.push_messages(messages))
