"""The learned ranker learns from people's accepts: served lists with their stored features become
training queries, and a preference planted in simulated feedback moves the retrained ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from agent.assembly import Services
from agent.pipeline import RecommendOptions
from core.db import open_store
from core.settings import Settings
from domains.places import PLACES
from retrieval.feedback_training import FeedbackQueries, feedback_queries
from retrieval.rankers import LearnedRanker
from retrieval.train_cli_support import train_and_save
from tests.conftest import services_for
from tests.retrieval.conftest import ask_retriever, place_ctx, store_events, world

FSET = PLACES.feature_set()
FEATURES = list(FSET.columns)
FAR = FEATURES.index("dist_last_km_log")
PLAIN = RecommendOptions(explain=False, use_llm=False)


def _serve_and_react(service: Services, users: list[str], days: int) -> list[str]:
    """Each user asks at several times; a simulated person accepts the farthest place shown (a
    taste the history does not show) and clicks the second farthest."""
    ids = []
    for u in users:
        for d in range(days):
            when = datetime(2012, 6, 1, 14, tzinfo=UTC) + timedelta(days=d, hours=3 * (d % 3))
            r = service.pipeline.run(u, _ctx(when), 8, PLAIN)
            far = sorted(r.items, key=lambda c: -c.features.get("dist_last_km_log", 0.0))
            service.records.feedback(r.recommendation_id, u, "accepted", far[0].item_id, None)
            service.records.feedback(r.recommendation_id, u, "clicked", far[1].item_id, None)
            ids.append(r.recommendation_id)
    return ids


def _ctx(when: datetime):  # type: ignore[no-untyped-def]
    return place_ctx(time=when)


def test_feedback_queries_carry_the_served_features_and_labels(settings: Settings) -> None:
    factory, history = _store(settings)
    service = services_for(settings, factory)
    _serve_and_react(service, ["u0", "u1"], days=3)
    with factory() as s:
        q = feedback_queries(s, FSET)
    assert q.recommendations == 6 and len(q.groups) == 6 and set(q.groups) == {8}
    assert q.x.shape == (48, len(FEATURES)) and sorted(set(q.y)) == [0.0, 1.0, 2.0]
    for g in range(6):  # one accept and one click per list: the farthest and the second farthest
        xs, ys = q.x[g * 8 : (g + 1) * 8], q.y[g * 8 : (g + 1) * 8]
        assert sorted(ys) == [0.0] * 6 + [1.0, 2.0]
        assert xs[ys == 2.0, FAR][0] == xs[:, FAR].max()
    assert set(q.users) == {"u0", "u1"}


def test_retraining_on_feedback_moves_the_ranking_towards_what_people_accept(settings: Settings) -> None:
    factory, history = _store(settings)
    service = services_for(settings, factory)
    _serve_and_react(service, [f"u{i}" for i in range(30)], days=8)
    with factory() as s:
        q = feedback_queries(s, FSET)
    # learn from 20 people's reactions, judge on the lists of 10 others
    held = np.isin(q.users, [f"u{i}" for i in range(20, 30)])
    rows = np.repeat(held, q.groups)
    train = FeedbackQueries(q.x[~rows], q.y[~rows], q.groups[~held], q.users[~held], int((~held).sum()))
    plain, _ = train_and_save(history, settings.models_dir / "plain", FSET, max_queries=400)
    learned, _ = train_and_save(history, settings.models_dir / "fb", FSET, max_queries=400, feedback=train)
    assert learned.meta["feedback_queries"] == 160 and plain.meta["feedback_queries"] == 0

    def farthest_rank(model: LearnedRanker) -> float:
        ranks = []
        x, y = q.x[rows], q.y[rows]
        for g in np.split(np.arange(len(y)), np.cumsum(q.groups[held])[:-1]):
            order = np.argsort(-model.score(x[g]), kind="stable")
            ranks.append(int(np.flatnonzero(y[g][order] == 2.0)[0]))
        return float(np.mean(ranks))

    # an experiment arm may serve the learned ranker while the server's default is the heuristic
    retriever = service.retriever
    assert retriever.recommender.ranker.name == "heuristic"
    retriever.models_dir = settings.models_dir / "fb"
    arm = ask_retriever(retriever, "u3", _ctx(datetime(2012, 6, 2, 18, tzinfo=UTC)), 5, ranker="learned")
    assert arm.ranker == learned.name and retriever.ranker_named("heuristic").name == "heuristic"
    before, after = farthest_rank(plain), farthest_rank(learned)
    print(f"mean rank of the accepted (farthest) place: {before:.2f} without feedback, {after:.2f} with")
    # measured 1.77 -> 0.62, every run: the stored lists are read in served order (read in any order,
    # LightGBM's bagging moved the result between 0.95 and 1.44)
    assert after < before - 1.0


def _store(settings: Settings) -> tuple[sessionmaker[Session], pd.DataFrame]:
    _, factory = open_store(settings)
    ev, _items = world(n_users=30, days=60)
    store_events(factory, ev)
    return factory, ev
