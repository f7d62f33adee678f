"""How many threads one request's matrix work uses (the encoder's and numpy's BLAS).

On a machine of few cores, shared or serving concurrent requests, a thread pool per
operation loses far more to its threads waiting for each other (a pool's threads spin at
a barrier while a busy core runs someone else) than it gains; one thread per operation,
with concurrent requests on the other cores, is both faster and steadier
(docs/benchmarks/serve.md). The limit is process-wide: torch and BLAS keep one pool each.
"""

from __future__ import annotations

import logging

import torch
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)


def limit_compute_threads(threads: int) -> None:
    """Run torch's and BLAS's operations on ``threads`` threads each (0: leave the defaults)."""
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    if threads == 0:
        return
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads, user_api="blas")
    logger.info("compute on %d thread(s) per operation (torch, BLAS)", threads)
