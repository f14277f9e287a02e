"""Train and save the learned ranker from an events frame (used by `rank train` and `eval`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from retrieval.features import FeatureSet
from retrieval.feedback_training import FeedbackQueries
from retrieval.rankers import LearnedRanker
from retrieval.training import TrainingSet, build_training_set

SEED = 0  # the same history trains the same model
# The "what next?" share of each model's pseudo-targets: the first model serves queries at a known
# time (trained on those only), the second "what next?" ones (trained on both: on dev it beat one
# trained on "what next?" queries alone, 0.3085 / 0.4425 against 0.2925 / 0.4329)
NEXT_SHARES = (0.0, 0.5)
# Columns the "what next?" model does without: the behaviour model's scores cost it 0.006 Acc@1
# on dev (0.3021 / 0.4383 with them, 0.3085 / 0.4425 without; its pools keep the source's items)
NEXT_LEAVES_OUT = ("behav_score", "behav_rank_score")


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
    early stopping (no evaluation data is used). One model per setting: one trained on the targets
    at their own times, one on those and "what next?" queries (a target ranked at the time of the
    event before it) alike, paired so "what next?" queries go to the second
    (``LearnedRanker.next_model``); the second alone lost 0.008 Acc@1 at a known time on dev
    (docs/measurements.md, "One model per setting").
    ``feedback``: served lists with people's accepts and clicks (retrieval.feedback_training),
    trained on beside the pseudo-targets of both."""
    models = []
    for share, leave_out in zip(NEXT_SHARES, ((), NEXT_LEAVES_OUT), strict=True):
        ts = build_training_set(
            history,
            fset,
            weeks=weeks,
            max_queries=max_queries,
            seed=SEED,
            next_share=share,
            progress=progress,
        )
        unused = tuple(c for c in leave_out if c in fset.col)
        model_fset = replace(fset, not_for_model=fset.not_for_model + unused) if unused else fset
        m = _fit(ts, model_fset, weeks, len(history), feedback, fit_progress)
        m.features = fset  # it reads the domain's rows and picks its own columns by name
        models.append(m)
    model = models[0].with_next(models[1])
    return model, model.save(models_dir)


def _fit(
    ts: TrainingSet,
    fset: FeatureSet,
    weeks: int,
    history_rows: int,
    feedback: FeedbackQueries | None,
    fit_progress: Callable[[int], None] | None,
) -> LearnedRanker:
    if len(ts.groups) < 20:
        raise ValueError(f"too little history to train a ranker ({len(ts.groups)} usable queries)")
    users = np.unique(ts.users)
    rng = np.random.default_rng(SEED)
    val_users = set(rng.choice(users, size=max(1, len(users) // 6), replace=False).tolist())
    qv = np.array([u in val_users for u in ts.users])
    rv = np.repeat(qv, ts.groups)
    x, y, groups = ts.x[~rv], ts.y[~rv], ts.groups[~qv]
    n_feedback = 0
    if feedback is not None and len(feedback.groups):
        x, y = np.vstack([x, feedback.x]), np.concatenate([y, feedback.y])
        groups = np.concatenate([groups, feedback.groups])
        n_feedback = int(len(feedback.groups))
    return LearnedRanker.train(
        fset,
        (x, y, groups),
        (ts.x[rv], ts.y[rv], ts.groups[qv]),
        on_round=fit_progress,
        meta={
            "weeks": weeks,
            "pool_recall_train": round(ts.pool_recall, 4),
            "history_rows": history_rows,
            "feedback_queries": n_feedback,
        },
    )
