"""A simulation worker's cohort message answered: each member as its own client, one reply.

The message names several simulated users (:mod:`fedrec.shared.cohort_messages`); their
training and evaluation are :mod:`fedrec.client.cohort`'s. This module reads the message's
config for them and packs their answers into the worker's one reply.
"""

from __future__ import annotations

from flwr.app import Context, Message

from fedrec.client.message_config import asker_of, config_int, run_id_of, user_round_of
from fedrec.client.node_context import refuse_cohort_on_own_node
from fedrec.shared import protocol as key
from fedrec.shared.cohort_messages import Cohort, reply_content
from fedrec.shared.config import FedRecConfig
from fedrec.shared.device import device_code, node_device
from fedrec.shared.serialization import arrays_to_numpy


def train_cohort_reply(
    msg: Message, cfg: FedRecConfig, cohort: Cohort, context: Context
) -> Message:
    """A worker's train message: each member trains as its own client, one reply each."""
    from fedrec.client.cohort import simulated_members, train_cohort  # torch: see client_app

    refuse_cohort_on_own_node(context)
    config = msg.content.config_records["config"]
    asker = asker_of(config)
    members = simulated_members(cfg, cohort.partitions, cohort.num_partitions, asker["run_id"])
    device = node_device(context.node_config)
    replies = train_cohort(
        cfg,
        members,
        arrays_to_numpy(msg.content.array_records["arrays"]),
        server_round=config_int(config, key.SERVER_ROUND),
        device=device,
        user_round=user_round_of(cfg, config, cohort.num_partitions),
        **asker,
    )
    code = device_code(device)
    content = reply_content(
        {
            m.partition_id: (r.arrays, {**r.metrics, key.DEVICE: code})
            for m, r in zip(members, replies, strict=True)
        },
        errors={m.partition_id: r.error for m, r in zip(members, replies, strict=True) if r.error},
    )
    return Message(content=content, reply_to=msg)


def evaluate_cohort_reply(
    msg: Message, cfg: FedRecConfig, cohort: Cohort, context: Context
) -> Message:
    """A worker's evaluate message: each member's metrics, as a one-user client sends them."""
    from fedrec.client.cohort import evaluate_cohort, simulated_members

    refuse_cohort_on_own_node(context)
    config = msg.content.config_records["config"]
    members = simulated_members(cfg, cohort.partitions, cohort.num_partitions, run_id_of(config))
    answers = evaluate_cohort(
        cfg,
        members,
        arrays_to_numpy(msg.content.array_records["arrays"]),
        k=config_int(config, key.EVAL_K, 10),
        personalize_epochs=config_int(config, key.PERSONALIZE_EPOCHS, 0),
    )
    content = reply_content(
        {m.partition_id: (None, a) for m, a in zip(members, answers, strict=True)}
    )
    return Message(content=content, reply_to=msg)
