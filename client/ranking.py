"""On-device ranking: the public global item model and the node's private user side.

The global model (a checkpoint's ``item_factors`` and ``item_bias``) is public; the user's
vector and items stay on the device. Scores are ``item_factors @ user + item_bias``, as the
service scores, and items the user already has are never recommended back.

The user's vector:

- ``mf`` (a federated or central checkpoint): the user's private factor from the node's
  sealed state when the node trained in that run, else the mean factor of the user's own
  items (a user added after training, or a node that never trained);
- ``cooccurrence``: the mean factor of the user's items with the content part faded
  (:func:`fedrec.shared.models.cooccurrence.user_vector`), its width and fade from the
  checkpoint's own settings.

The text heads (a user head, a co-occurrence model's item popularity) serve free-text
queries, which are the service's job, and are not needed here. Only a checkpoint with an
*item* head (``item-head = true``) computes item vectors from item texts through it; that
is the service's job too (``fedrec serve``), and such a model is refused here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedrec.client.dataview import node_client_data
from fedrec.client.localstore import NodeStore
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import DataConfig, FedRecConfig, config_of_checkpoint
from fedrec.shared.data import catalog_version
from fedrec.shared.errors import ConfigError, DataError
from fedrec.shared.models.cooccurrence import user_vector
from fedrec.shared.models.initial import ITEM_HEAD_W, LORA_PREFIX


@dataclass(frozen=True)
class GlobalItems:
    """The global item side of one model version, and how a user vector is made for it."""

    model_version: str
    kind: str  # "mf" or "cooccurrence"
    factors: np.ndarray  # float32 [n_items, dim]
    bias: np.ndarray  # float32 [n_items]
    catalog_version: str  # the catalogue the rows follow
    content_split: tuple[int, float] | None = None  # cooccurrence: (collaborative cols, fade)
    implicit_threshold: float = 0.0  # which ratings the run counted as positives
    run_id: str | None = None  # the run's identity, when its RUN_ID came with the checkpoint


def load_global_items(path: Path) -> GlobalItems:
    """The item model of the checkpoint at ``path`` (run or checkpoint folder; hashes checked)."""
    ckpt = load_checkpoint(Path(path))
    if ITEM_HEAD_W in ckpt.tensors or any(k.startswith(LORA_PREFIX) for k in ckpt.tensors):
        raise ConfigError(
            f"{ckpt.path} has an item head or adapters: its item vectors come from the item "
            "texts through them; rank with the service (`fedrec serve`)"
        )
    factors = np.asarray(ckpt.tensors["item_factors"], dtype=np.float32)
    cfg = config_of_checkpoint(ckpt.manifest.get("config", {}))
    split = None
    kind = "mf"
    if ckpt.manifest.get("kind") == "cooccurrence":
        kind = "cooccurrence"
        saved = cfg.cooccurrence
        split = (saved.collaborative_width(factors.shape[0]), saved.cooccurrence_content_fade)
    run_file = ckpt.path.parent.parent / "RUN_ID"
    return GlobalItems(
        model_version=str(ckpt.manifest["model_version"]),
        kind=kind,
        factors=factors,
        bias=np.asarray(ckpt.tensors["item_bias"], dtype=np.float32),
        catalog_version=str(ckpt.manifest["catalog_sha256"]),
        content_split=split,
        implicit_threshold=cfg.data.implicit_threshold,
        run_id=run_file.read_text().strip() if run_file.is_file() else None,
    )


def user_vector_of(
    model: GlobalItems, own_items: np.ndarray, private_factor: np.ndarray | None
) -> np.ndarray:
    """The user's vector for ``model`` (see the module docstring)."""
    own = np.asarray(own_items, dtype=np.int64)
    if model.content_split is not None:
        rank, fade = model.content_split
        return user_vector(model.factors, own, rank=rank, fade=fade).astype(np.float32)
    if private_factor is not None:
        factor = np.asarray(private_factor, dtype=np.float32)
        if factor.shape != (model.factors.shape[1],):
            raise ConfigError(
                f"the private factor has shape {factor.shape}, the model's items "
                f"{model.factors.shape[1]} dimensions: the state belongs to another run"
            )
        return factor
    if own.size == 0:
        return np.zeros(model.factors.shape[1], dtype=np.float32)
    return model.factors[own].mean(axis=0)  # type: ignore[no-any-return]


def rank_items(
    model: GlobalItems, user: np.ndarray, *, exclude: np.ndarray, k: int
) -> list[tuple[int, float]]:
    """The ``k`` best (item index, score) for ``user``, none of ``exclude`` among them."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores = model.factors @ user + model.bias
    scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    n = min(k, int(np.isfinite(scores).sum()))
    if n == 0:
        return []
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.lexsort((top, -scores[top]))]  # best first; ties by index
    return [(int(i), float(scores[i])) for i in top]


@dataclass(frozen=True)
class Recommendation:
    """One recommended item: its catalogue id and title, and its score."""

    item: str
    title: str
    score: float


def recommend_on_device(
    store: NodeStore,
    model: GlobalItems,
    user: str,
    *,
    private_factors: np.ndarray | None,
    k: int = 10,
) -> list[Recommendation]:
    """``user``'s top ``k`` from the node's own data and ``private_factors`` (its state).

    Nothing leaves the device: the model was downloaded, the rest is read from the node.
    The node's catalogue must be the model's, whose rows follow it.
    """
    catalog = store.catalog()
    if catalog_version(catalog) != model.catalog_version:
        raise ConfigError(
            f"the node's catalogue is version {catalog_version(catalog)[:12]}, the model's "
            f"{model.catalog_version[:12]}; import the run's catalog.json first"
        )
    cfg = FedRecConfig(data=DataConfig(implicit_threshold=model.implicit_threshold))
    data = node_client_data(cfg, store)
    if user not in data.user_ids:
        raise DataError(f"no interactions of user {user!r} on this node", path=str(store.data_dir))
    j = list(data.user_ids).index(user)
    own = data.train_items[data.train_users == j]
    factor = None
    if private_factors is not None and j < private_factors.shape[0]:
        factor = private_factors[j]
    vec = user_vector_of(model, own, factor)
    return [
        Recommendation(catalog.raw_ids[i], catalog.titles[i], score)
        for i, score in rank_items(model, vec, exclude=data.seen[j], k=k)
    ]
