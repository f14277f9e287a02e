"""Training the films ranker: LightGBM LambdaRank on pseudo-targets, each person's latest ratings.

Every pseudo-target is ranked as serving would have ranked it at its own time: the catalog
statistics read only the ratings before it (domains/films/signals.py), the person's history is
their ratings before it, and the pool is the sources' union at that moment. So the whole history
serves as training data without a cut-off date and nothing after a target reaches its features.
A fifth of the people are held out for early stopping. The recipe (the last 10 ratings of each
person in the 5-core set, the parameters below) is the one the dev-split study chose
(docs/measurements.md#films).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import columns as C
from domains.films.retrieval import film_plan
from retrieval.behaviour_source import BEHAV, BehaviourEmbeddingGroup
from retrieval.candidate_pool import candidate_pool
from retrieval.catalog_stats import CatalogStats
from retrieval.feedback_training import FeedbackQueries
from retrieval.plan import RetrievalPlan
from retrieval.rankers import LearnedRanker
from retrieval.training import POOL, TrainingSet, query_time
from retrieval.user_history import UserHistory

PER_PERSON = 10
HELD_OUT = 0.2
PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "lambda_l2": 1.0,
    "lambdarank_truncation_level": 30,
    "seed": 0,
    "deterministic": True,
    "force_row_wise": True,
}


def ratings_in_order(history: pd.DataFrame) -> pd.DataFrame:
    """The ratings, in time order (ties kept in the order given: the file's row order)."""
    h = history.dropna(subset=[C.ITEM])
    if C.KIND in h:
        h = h[h[C.KIND] == "rating"] if (h[C.KIND] == "rating").any() else h[h[C.KIND] != "feedback"]
    h = h.assign(_ts=pd.to_datetime(h[C.TIME], utc=True))
    return h.sort_values("_ts", kind="stable").drop(columns="_ts").reset_index(drop=True)


def five_core(h: pd.DataFrame, k: int = 5) -> np.ndarray:
    """Rows kept by iterated k-core filtering (films and people with at least k ratings)."""
    keep = np.ones(len(h), dtype=bool)
    users, items = h[C.USER].astype(str).to_numpy(), h[C.ITEM].astype(str).to_numpy()
    while True:
        n = int(keep.sum())
        for col in (items, users):
            vals, inv = np.unique(col, return_inverse=True)
            counts = np.bincount(inv[keep], minlength=len(vals))
            keep &= counts[inv] >= k
        if int(keep.sum()) == n:
            return keep


def pseudo_targets(h: pd.DataFrame, per_person: int = PER_PERSON) -> np.ndarray:
    """Rows of ``h`` (ratings in time order): each person's last ``per_person`` 5-core ratings,
    never their first (a target needs a history)."""
    core = np.flatnonzero(five_core(h))
    users = h[C.USER].astype(str).to_numpy()[core]
    out = []
    for u in pd.unique(users):
        mine = core[users == u][1:]
        out.extend(mine[-per_person:].tolist())
    return np.sort(np.array(out, dtype=np.int64))


def training_set(
    h: pd.DataFrame,
    stats: CatalogStats,
    plan: RetrievalPlan,
    targets: np.ndarray,
    catalog: np.ndarray,
    progress: Callable[[int], None] | None = None,
) -> TrainingSet:
    """One query per target row of ``h``; ``catalog``: the films a target may be ranked among."""
    fset, sources = plan.features, plan.source_plan(None)
    rows_of = {u: g.index.to_numpy() for u, g in h.groupby(C.USER, sort=False)}
    item_idx = stats.index_of(h[C.ITEM].astype(str).to_numpy())
    ts = pd.to_datetime(h[C.TIME], utc=True)
    xs, ys, groups, users = [], [], [], []
    hits = 0
    for row in targets.tolist():
        u = str(h.at[row, C.USER])
        mine = rows_of[h.at[row, C.USER]]
        uh = UserHistory.from_frame(h.loc[mine[mine < row]], stats)
        q = fset.query(stats, uh, query_time(ts.iloc[row], 0))
        allowed = catalog.copy()
        allowed[uh.idx[uh.idx >= 0]] = False
        cp = candidate_pool(stats, q, fset, sources, allowed, POOL)
        if progress:
            progress(1)
        hit = cp.rows == item_idx[row]
        if not hit.any():
            continue  # the target is not in the pool: nothing to learn from this query
        hits += 1
        xs.append(cp.features)
        ys.append(hit.astype(float))
        groups.append(len(cp.rows))
        users.append(u)
    return TrainingSet(
        x=np.vstack(xs) if xs else np.zeros((0, len(fset.columns)), dtype=np.float32),
        y=np.concatenate(ys) if ys else np.zeros(0),
        groups=np.array(groups, dtype=np.int64),
        users=np.array(users),
        pool_recall=hits / max(len(targets), 1),
    )


def fit(
    ts: TrainingSet,
    plan: RetrievalPlan,
    meta: dict[str, object],
    feedback: FeedbackQueries | None = None,
    seed: int = 0,
    on_round: Callable[[int], None] | None = None,
) -> LearnedRanker:
    """Early-stopped on held-out people; ``feedback``: served lists people accepted or clicked in
    (retrieval/feedback_training.py), trained on beside the pseudo-targets."""
    people = np.unique(ts.users)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(people, size=max(1, int(round(HELD_OUT * len(people)))), replace=False).tolist())
    qv = np.array([u in held for u in ts.users])
    rv = np.repeat(qv, ts.groups)
    x, y, groups = ts.x[~rv], ts.y[~rv], ts.groups[~qv]
    n_feedback = 0
    if feedback is not None and len(feedback.groups):
        x, y = np.vstack([x, feedback.x]), np.concatenate([y, feedback.y])
        groups = np.concatenate([groups, feedback.groups])
        n_feedback = int(len(feedback.groups))
    return LearnedRanker.train(
        plan.features,
        (x, y, groups),
        (ts.x[rv], ts.y[rv], ts.groups[qv]),
        rounds=2000,
        stop=100,
        params=PARAMS,
        on_round=on_round,
        meta={**meta, "feedback_queries": n_feedback},
    )


def _behaviour_before(
    plan: RetrievalPlan, stats: CatalogStats, h: pd.DataFrame, targets: np.ndarray, items: pd.DataFrame | None
) -> dict[str, Any]:
    """The behaviour model trained without the pseudo-targets (the film signals read ratings as of
    each target's time; a trained model cannot, so it must not have seen them)."""
    group = plan.features.group(BEHAV)
    if not isinstance(group, BehaviourEmbeddingGroup):
        return {}
    return {BEHAV: group.trained_or_why(stats, h.drop(index=h.index[targets]), items)}


def train_film_ranker(
    history: pd.DataFrame,
    models_dir: Path,
    progress: Callable[[int], None] | None = None,
    items: pd.DataFrame | None = None,
    feedback: FeedbackQueries | None = None,
    fit_progress: Callable[[int], None] | None = None,
) -> tuple[LearnedRanker, Path]:
    """Train on ``history`` (the store's events) and save; ``items``: the catalog, if known;
    ``fit_progress(i)``: told each boosting round."""
    plan = film_plan()
    h = ratings_in_order(history)
    targets = pseudo_targets(h)
    if len(targets) < 50:
        raise ValueError(f"too little history to train a films ranker ({len(targets)} pseudo-targets)")
    stats = CatalogStats.build(h, items)
    plan.features.build_parts(stats, h, items, _behaviour_before(plan, stats, h, targets, items))
    catalog = np.zeros(stats.n, dtype=bool)
    catalog[np.unique(stats.index_of(h[C.ITEM].astype(str).to_numpy()[five_core(h)]))] = True
    ts = training_set(h, stats, plan, targets, catalog, progress)
    if len(ts.groups) < 20:
        raise ValueError(f"too little history to train a films ranker ({len(ts.groups)} usable queries)")
    model = fit(
        ts,
        plan,
        {
            "pseudo_targets": int(len(targets)),
            "pool_recall_train": round(ts.pool_recall, 4),
            "history_rows": len(h),
        },
        on_round=fit_progress,
    )
    return model, model.save(models_dir)
