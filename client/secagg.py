"""The client half of SecAgg+: Flower's ``secaggplus_mod`` around fedrec's train handler.

The server half is ``server/secagg.py``: the two modules share a name because they are the
two ends of one protocol (its message keys are in :mod:`fedrec.shared.protocol`).

The server (``server/secagg.py``) runs Flower's ``SecAggPlusWorkflow``, which sends four
``train`` messages per round: setup (protocol parameters; the client makes key pairs),
share keys (encrypted secret shares for its neighbours), collect masked vectors (the
client trains and returns its masked update) and unmask (shares that let the server remove
the masks of the sum). Flower's :func:`~flwr.client.mod.secaggplus_mod` does the
cryptography and keeps its state in ``context.state``; in the third stage it calls the rest
of the app and masks what comes back.

That stage speaks Flower's legacy ``FitIns``/``FitRes`` records. :func:`secagg_mod` bridges
them to fedrec's own ``train`` handler, which then sees the usual ``arrays`` and ``config``,
plus what it needs for its share of the noise: ``secagg-min-survivors`` (the protocol's
reconstruction threshold ``t``: the sum can only be unmasked if at least ``t`` clients'
vectors are in it) and ``secagg-clients`` (how many clients the round sampled). The handler
replies with its clipped, noised update (a delta, not a model); nothing else leaves the
client unmasked but its plaintext metrics.

Messages without SecAgg+ configs pass straight through, so the same app serves every mode.
"""

from __future__ import annotations

from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, Message
from flwr.app.message_type import MessageType
from flwr.client.mod import secaggplus_mod
from flwr.client.mod.secure_aggregation.secaggplus_mod import SecAggPlusState
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import (
    Code,
    FitRes,
    Scalar,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, RECORD_KEY_STATE
from flwr.compat.common import recorddict_compat as compat

from fedrec.shared.protocol import SECAGG_CLIENTS, SECAGG_MIN_SURVIVORS, SECAGG_TENSORS
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays


def is_secagg(msg: Message) -> bool:
    """Whether ``msg`` is a stage of Flower's SecAgg+ protocol."""
    return (
        msg.metadata.message_type == MessageType.TRAIN
        and RECORD_KEY_CONFIGS in msg.content.config_records
    )


def _bridge(call_next: ClientAppCallable) -> ClientAppCallable:
    """Legacy FitIns in, fedrec's handler in the middle, legacy FitRes out."""

    def bridged(msg: Message, ctxt: Context) -> Message:
        # Flower's legacy FitIns as records (read directly: its converter rejects the lists
        # fedrec's config carries).
        parameters = compat.arrayrecord_to_parameters(
            msg.content.array_records["fitins.parameters"], keep_input=True
        )
        config: dict[str, Any] = dict(msg.content.config_records["fitins.config"])
        names = [str(n) for n in config.pop(SECAGG_TENSORS)]
        arrays = dict(zip(names, parameters_to_ndarrays(parameters), strict=True))
        # The protocol parameters this client accepted at setup (Flower keeps them here).
        protocol = SecAggPlusState(**ctxt.state.config_records[RECORD_KEY_STATE])
        config[SECAGG_MIN_SURVIVORS] = int(protocol.threshold)
        config[SECAGG_CLIENTS] = int(protocol.sample_num)
        msg.content["arrays"] = numpy_to_arrays(arrays)
        msg.content["config"] = ConfigRecord(config)
        reply = call_next(msg, ctxt)
        if reply.has_error():
            return reply
        update = arrays_to_numpy(reply.content.array_records.get("arrays", ArrayRecord()))
        missing = [n for n in names if n not in update]
        if missing:
            raise ValueError(f"the train handler's SecAgg+ reply lacks tensors {missing}")
        metrics: dict[str, Scalar] = {
            k: float(v)  # type: ignore[arg-type]
            for k, v in reply.content.metric_records.get("metrics", {}).items()
        }
        fitres = FitRes(
            status=Status(code=Code.OK, message=""),
            parameters=ndarrays_to_parameters([update[n] for n in names]),
            num_examples=1,  # every client weighs 1: the workflow's mean times survivors = sum
            metrics=metrics,
        )
        return Message(compat.fitres_to_recorddict(fitres, keep_input=False), reply_to=msg)

    return bridged


def secagg_mod(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    """Run SecAgg+ stages through Flower's ``secaggplus_mod``; pass other messages on."""
    if not is_secagg(msg):
        return call_next(msg, ctxt)
    return secaggplus_mod(msg, ctxt, _bridge(call_next))
