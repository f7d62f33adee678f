"""The server's side of the private co-occurrence model: from the released sum to a model.

The server holds only the sum of the clients' vectors (under SecAgg+ it never sees one
alone); under ``central`` placement it adds the noise here. Everything after the sum is
post-processing of a DP release and costs no privacy:

1. the sum becomes the symmetric co-occurrence (Gram) matrix;
2. its top eigenpairs become the collaborative part of the item factors
   (:func:`fedrec.shared.models.cooccurrence.spectral_factors`, scaled so the top
   eigenvalue counts 1), served like any MF item table with zero biases: a new or
   on-device user is the mean of its items' factors;
3. with text towers on, each item's factor also gets a content part, its *public* text
   embedding (centred, unit norm) times ``sqrt(content-weight)``: a user's score then adds
   ``content-weight`` times the mean text similarity of its items to the candidate, which
   is what keeps a Star Wars fan's list science fiction where the noisy co-occurrence alone
   would drift to what is popular;
4. and a linear user head maps free text into the same space: its collaborative rows are a
   ridge fit from the item embeddings to the collaborative part, its content rows the same
   centring and scaling as the items'.
"""

from __future__ import annotations

import numpy as np

from fedrec.shared.models.cooccurrence import gram_from_vector, spectral_factors
from fedrec.shared.models.hybrid import USER_HEAD_B, USER_HEAD_W
from fedrec.shared.privacy import DPRandom
from fedrec.shared.privacy.cooccurrence import ReleasePlan

# Ridge penalty of the text head: the embeddings are unit-norm and there are far more items
# than embedding dimensions, so a small penalty suffices to keep the fit stable.
TEXT_HEAD_L2 = 1.0


def noised_sum(total: np.ndarray, plan: ReleasePlan, rng: DPRandom | None) -> np.ndarray:
    """The released sum: ``total`` plus the server's noise (``central`` placement only)."""
    if plan.server_std <= 0:
        return np.asarray(total, np.float64)
    if rng is None:
        raise ValueError("central noise needs a DP random source")
    return np.asarray(total, np.float64) + rng.normal(np.shape(total), plan.server_std)


def collaborative_factors(released: np.ndarray, n_items: int, rank: int) -> np.ndarray:
    """The spectral item factors of a released sum, scaled so the top eigenvalue is 1."""
    factors = spectral_factors(gram_from_vector(released, n_items), min(rank, n_items))
    top = float(np.linalg.norm(factors[:, 0]))  # sqrt of the top eigenvalue
    return factors / top if top > 0 else factors


def ridge_head(
    target: np.ndarray, item_embeddings: np.ndarray, l2: float = TEXT_HEAD_L2
) -> tuple[np.ndarray, np.ndarray]:
    """``W, b`` with ``W e + b`` the ridge fit of ``target`` rows from the item embeddings."""
    emb = np.asarray(item_embeddings, np.float64)
    target = np.asarray(target, np.float64)
    if emb.shape[0] != target.shape[0]:
        raise ValueError(f"{emb.shape[0]} item embeddings for {target.shape[0]} item factors")
    mean_e, mean_t = emb.mean(axis=0), target.mean(axis=0)
    e, t = emb - mean_e, target - mean_t
    weight = np.linalg.solve(e.T @ e + l2 * np.eye(e.shape[1]), e.T @ t).T  # [d, 384]
    return weight, mean_t - weight @ mean_e


def item_tensors(
    released: np.ndarray,
    n_items: int,
    rank: int,
    *,
    item_embeddings: np.ndarray | None = None,
    content_weight: float = 0.0,
) -> dict[str, np.ndarray]:
    """The servable tensors of a released sum: item factors, zero biases, the text head.

    Without ``item_embeddings`` the factors are the collaborative part alone and there is
    no text head.
    """
    collab = collaborative_factors(released, n_items, rank)
    out = {"item_bias": np.zeros(n_items, np.float32)}
    if item_embeddings is None:
        out["item_factors"] = collab.astype(np.float32)
        return out
    emb = np.asarray(item_embeddings, np.float64)
    mean = emb.mean(axis=0)
    centred = emb - mean
    norms = np.linalg.norm(centred, axis=1)
    norms[norms == 0] = 1.0
    root = float(np.sqrt(max(content_weight, 0.0)))
    content = root * centred / norms[:, None]
    out["item_factors"] = np.hstack([collab, content]).astype(np.float32)
    w_collab, b_collab = ridge_head(collab, emb)
    # Free text: the same centring; its norm is unknown in advance, so the items' mean norm.
    scale = root / float(norms.mean())
    w_content = scale * np.eye(emb.shape[1])
    out[USER_HEAD_W] = np.vstack([w_collab, w_content]).astype(np.float32)
    out[USER_HEAD_B] = np.concatenate([b_collab, -scale * mean]).astype(np.float32)
    return out
