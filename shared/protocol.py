"""The keys the server and its clients exchange, named once for both sides.

A train message's ``config`` record carries the round and who asks; its reply's
``metrics`` record what the client may say about its training. Both halves of SecAgg+
(``server/secagg.py`` and ``client/secagg.py``) add their own keys. Keeping the names here
means a change on one side cannot silently stop matching the other.
"""

from __future__ import annotations

# ---- train message config (server -> client)
SERVER_ROUND = "server-round"  # set by Flower's strategy when it builds the messages
RUN_ID = "run-id"  # the run's identity: a client keeps one state per run
CATALOG_SHA256 = "catalog-sha256"  # the run's catalogue version: a node's own must match
RESUMED_FROM = "resumed-from"  # the round the asking server process started at
SERVER_INCARNATION = "server-incarnation"  # a token per server process
COMMITTED_INCARNATIONS = "committed-incarnations"  # "token:first:last" per earlier process
USER_DP = "user-dp"  # where user-level noise is added, for the client's ledger
USER_DELTA = "user-delta"  # the run's user-level delta, for the client's ledger
TASK = "task"  # absent: a training round; TASK_COOCCURRENCE: a slice of the release
TASK_COOCCURRENCE = "cooccurrence"
CHUNK_START = "chunk-start"  # the release's entries [start, end) this message asks for
CHUNK_END = "chunk-end"
# A simulation worker's message (shared/cohort_messages.py): the simulated users it trains
# or evaluates (partition ids), and how many partitions the run's data set is cut into.
COHORT_PARTITIONS = "cohort-partitions"
COHORT_NUM_PARTITIONS = "cohort-num-partitions"

# ---- evaluate message config (server -> client)
EVAL_K = "k"
PERSONALIZE_EPOCHS = "personalize-epochs"

# ---- reply metrics (client -> server)
WEIGHT = "weight"  # every client weighs 1: example counts would leak dataset sizes
BUDGET_EXHAUSTED = "budget-exhausted"  # 1.0: the client refused, its budget is spent
EPSILON = "epsilon"  # the record-level epsilon its accountant holds (-1 without DP)
USER_EPSILON = "user-epsilon"  # the user-level epsilon its ledger holds
DEVICE = "device"  # the CUDA index it trained on, -1: the CPU (shared/device.py)

# ---- SecAgg+ (both halves of the protocol)
SECAGG_TENSORS = "secagg-tensors"  # the order of the global tensors in legacy parameters
SECAGG_MIN_SURVIVORS = "secagg-min-survivors"  # the reconstruction threshold t
SECAGG_CLIENTS = "secagg-clients"  # how many clients the round sampled
