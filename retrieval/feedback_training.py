"""Training queries for the learned ranker from people's reactions to served recommendations.

Every served recommendation stores its ranked candidates with their features (the trace). One
with an accept or a click becomes one more LambdaRank query: the listed places, with the features
they had when they were served, labelled 2 (accepted), 1 (clicked) or 0 (shown and passed over, or
rejected). This is how feedback reaches other users: through the ranker's learned statistics only,
never through one user's reactions applied to another's list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Event, Recommendation
from retrieval.features import FeatureSet

LABEL = {"accepted": 2.0, "clicked": 1.0, "rejected": 0.0}


@dataclass
class FeedbackQueries:
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    users: np.ndarray
    recommendations: int  # with any reaction (those without a positive teach nothing here)


def feedback_queries(
    session: Session, fset: FeatureSet, since: datetime | None = None, before: datetime | None = None
) -> FeedbackQueries:
    """One query per recommendation with an accept or click (served in [since, before)), in the
    columns of ``fset``."""
    stmt = (
        select(Event.recommendation_id, Event.item_id, Event.attributes)
        .join(Recommendation, Recommendation.id == Event.recommendation_id)
        .where(Event.kind == "feedback")
        # served order: the same store gives the same training rows, so the same model
        .order_by(Recommendation.created_at, Recommendation.id, Event.id)
    )
    if since is not None:
        stmt = stmt.where(Recommendation.created_at >= since)
    if before is not None:
        stmt = stmt.where(Recommendation.created_at < before)
    labels: dict[str, dict[str, float]] = {}
    for rec_id, item, attrs in session.execute(stmt).all():
        kind = (attrs or {}).get("feedback")
        if rec_id and item and kind in LABEL:
            got = labels.setdefault(rec_id, {})
            got[str(item)] = max(got.get(str(item), 0.0), LABEL[kind])
    col = fset.col
    width = len(fset.columns)
    xs, ys, groups, users = [], [], [], []
    wanted = [r for r, lab in labels.items() if max(lab.values()) > 0]
    for i in range(0, len(wanted), 500):
        rows = session.execute(
            select(Recommendation.id, Recommendation.user_id, Recommendation.candidates)
            .where(Recommendation.id.in_(wanted[i : i + 500]))
            .order_by(Recommendation.created_at, Recommendation.id)
        ).all()
        for rec_id, user, candidates in rows:
            cands = [c for c in candidates or [] if c.get("item_id") is not None]
            if len(cands) < 2:
                continue
            x = np.zeros((len(cands), width), dtype=float)
            for r, c in enumerate(cands):
                # traces leave zero-valued features out; names the model does not know are skipped
                for name, v in (c.get("features") or {}).items():
                    if name in col:
                        x[r, col[name]] = float(v)
            lab = labels[rec_id]
            xs.append(x)
            ys.append(np.array([lab.get(str(c["item_id"]), 0.0) for c in cands]))
            groups.append(len(cands))
            users.append(str(user))
    return FeedbackQueries(
        x=np.vstack(xs) if xs else np.zeros((0, width)),
        y=np.concatenate(ys) if ys else np.zeros(0),
        groups=np.array(groups, dtype=int),
        users=np.array(users, dtype=object),
        recommendations=len(labels),
    )
