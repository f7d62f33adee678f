"""A person's check, kept as a test: new users get lists of the genres they showed.

The private co-occurrence model on the embedded ML-100K at user-level ε = 4 (central
placement, for speed: secagg differs only in where the same noise is added), served by the
product's recommender; for fixed liked-item profiles the genre share of the top 10 must be
high, and well above popularity's.
"""

from pathlib import Path

import numpy as np
import pytest

from fedrec.server.serving import Recommender
from fedrec.shared.baselines import Popularity, popularity_score_fn
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.evaluation import evaluate_model
from fedrec.shared.evaluation.relevance import (
    PROFILES,
    genre_share,
    profile_relevance,
    top_ten,
)
from fedrec.simulation.cooccurrence import train_cooccurrence

pytestmark = pytest.mark.slow


def test_private_answers_follow_the_liked_genres_and_beat_popularity(tmp_path: Path) -> None:
    run = train_cooccurrence(
        {
            "user-dp": "central",
            "cooccurrence-epsilon": 4.0,
            "output-dir": str(tmp_path / "runs"),
            "run-name": "relevance",
        }
    )
    assert run.plan.epsilon is not None and run.plan.epsilon <= 4.0
    ckpt = load_checkpoint(run.run_dir)
    rec = Recommender.from_checkpoint(ckpt)
    ours = {}
    for name, (liked, genres) in PROFILES.items():
        answer = rec.cold_start(list(liked), k=10).items
        index = np.array([rec.index_of[i.id] for i in answer])
        ours[name] = genre_share(index, ckpt.catalog, genres)
    dataset, split = load_split(resolve_config({}, {}).data)
    popular = Popularity().fit(split).score(np.zeros(1, np.int64))[0]
    baseline = profile_relevance(dataset.items, lambda liked: top_ten(popular, liked))
    assert min(ours.values()) >= 0.5, ours
    assert np.mean(list(ours.values())) >= 0.75, ours
    assert np.mean(list(ours.values())) >= np.mean(list(baseline.values())) + 0.3, (ours, baseline)
    # and the model is better than popularity for warm users too (test split, on device)
    pop = evaluate_model(popularity_score_fn(split), split, k=10, seed=42)["ndcg@10_full"]
    assert run.test["ndcg@10_full"] > 1.1 * pop
