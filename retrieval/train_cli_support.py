"""Train and save the learned ranker from an events frame (used by `rank train` and `eval`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from retrieval.features import FeatureSet
from retrieval.feedback_training import FeedbackQueries
from retrieval.rankers import LearnedRanker
from retrieval.training import build_training_set


def train_and_save(
    history: pd.DataFrame,
    models_dir: Path,
    fset: FeatureSet,
    *,
    weeks: int = 8,
    max_queries: int = 9000,
    progress: Callable[[int], None] | None = None,
    feedback: FeedbackQueries | None = None,
    fit_progress: Callable[[int], None] | None = None,
) -> tuple[LearnedRanker, Path]:
    """Pseudo-targets from the last ``weeks`` of ``history``; a sixth of the users held out for
    early stopping (no evaluation data is used). ``feedback``: served lists with people's accepts
    and clicks (retrieval.feedback_training), trained on beside the pseudo-targets."""
    seed = 0  # the same history trains the same model
    ts = build_training_set(history, fset, weeks=weeks, max_queries=max_queries, seed=seed, progress=progress)
    if len(ts.groups) < 20:
        raise ValueError(f"too little history to train a ranker ({len(ts.groups)} usable queries)")
    users = np.unique(ts.users)
    rng = np.random.default_rng(seed)
    val_users = set(rng.choice(users, size=max(1, len(users) // 6), replace=False).tolist())
    qv = np.array([u in val_users for u in ts.users])
    rv = np.repeat(qv, ts.groups)
    x, y, groups = ts.x[~rv], ts.y[~rv], ts.groups[~qv]
    n_feedback = 0
    if feedback is not None and len(feedback.groups):
        x, y = np.vstack([x, feedback.x]), np.concatenate([y, feedback.y])
        groups = np.concatenate([groups, feedback.groups])
        n_feedback = int(len(feedback.groups))
    model = LearnedRanker.train(
        fset,
        (x, y, groups),
        (ts.x[rv], ts.y[rv], ts.groups[qv]),
        on_round=fit_progress,
        meta={
            "weeks": weeks,
            "pool_recall_train": round(ts.pool_recall, 4),
            "history_rows": len(history),
            "feedback_queries": n_feedback,
        },
    )
    return model, model.save(models_dir)
