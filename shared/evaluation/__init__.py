"""Evaluation in one place: ranking, metrics, the leave-one-out protocol, statistics.

- :mod:`~fedrec.shared.evaluation.ranking`: one user's rank of a held-out item (full or
  against sampled negatives) and the top-k list, ties pessimistic and deterministic.
- :mod:`~fedrec.shared.evaluation.metrics`: HR/NDCG/MRR/recall from ranks or lists,
  coverage, genre diversity, popularity rank.
- :mod:`~fedrec.shared.evaluation.protocol`: per-user evaluation, its summary, the
  server's combination of client summaries, and the central evaluator of a whole split.
- :mod:`~fedrec.shared.evaluation.stats`: AUC, TPR at a low FPR, standard errors and
  paired differences.
"""

from fedrec.shared.evaluation.protocol import (
    ScoreFn,
    UserEval,
    aggregate_client_metrics,
    evaluate_model,
    evaluate_user,
    list_metrics,
    summarize,
    user_ndcgs,
)
from fedrec.shared.evaluation.ranking import full_rank, sample_negatives, sampled_rank, top_k
from fedrec.shared.evaluation.stats import (
    PairedDifference,
    auc,
    mean_and_se,
    paired_difference,
    paired_standard_error,
    standard_error,
    tpr_at_fpr,
)

__all__ = [
    "PairedDifference",
    "ScoreFn",
    "UserEval",
    "aggregate_client_metrics",
    "auc",
    "evaluate_model",
    "evaluate_user",
    "full_rank",
    "list_metrics",
    "mean_and_se",
    "paired_difference",
    "paired_standard_error",
    "sample_negatives",
    "sampled_rank",
    "standard_error",
    "summarize",
    "top_k",
    "user_ndcgs",
    "tpr_at_fpr",
]
