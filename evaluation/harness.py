"""``chronotope eval`` for places: rank every known POI for each dev target, report metrics and baselines.

The protocol of shared/datasets/foursquare_nyc/README.md (evaluation/dev_split.py): statistics
from the history only, one query per trajectory's last check-in, the input being the history plus
the user's earlier test rows. Each target is ranked as served (evaluation/ranking.py). A target
that is not rankable at all (never seen in the history nor in the user's own input) is a miss.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from core import columns as C
from evaluation.dev_split import DevSplit, Query, user_input
from evaluation.known_categories import KnownCategories
from evaluation.llm_report import Reranked
from evaluation.ranking import EvalTarget, Reporting, report, run
from evaluation.ranking import table_rows as _table_rows
from retrieval.behaviour_source import behaviour_status
from retrieval.catalog_stats import CatalogStats
from retrieval.features import FeatureSet
from retrieval.plan import RetrievalPlan
from retrieval.rankers import Ranker
from retrieval.training import POOL, query_time
from retrieval.types import Candidate
from retrieval.user_history import UserHistory

KEYS = ("n", "acc@1", "acc@5", "acc@10", "ndcg@10", "mrr")
# Reranks the top of a ranked list: (query, the user's input frame, top candidates best first,
# the request's text or None) -> the new order
Reranker = Callable[[Query, pd.DataFrame, list[Candidate], str | None], Reranked]


def baseline_scores(fset: FeatureSet) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    col = fset.col

    def scores(f: np.ndarray) -> dict[str, np.ndarray]:
        pop = f[:, col["popularity_log"]]
        ucount = f[:, col["user_count_log"]]
        markov = f[:, col["global_trans_prob"]]
        return {
            "popularity": pop,
            "user frequency": ucount * 1e3 + pop,
            "markov": markov * 1e6 + ucount * 1e3 + pop,
            "heuristic blend": fset.heuristic(f),
        }

    return scores


def catalog_of(split: DevSplit, plan: RetrievalPlan) -> CatalogStats:
    """Statistics from the history only; test-only POIs join the catalog (coordinates from the test
    file) but are rankable for a user only once they are in that user's own input."""
    # the test file's ids and coordinates only: what else it says of an item (its kind in rows
    # after a target) must not reach features or the behaviour model
    items = split.test.rename(columns={C.ITEM: "item_id", C.LAT: "lat", C.LON: "lon"})[
        ["item_id", "lat", "lon"]
    ]
    stats = CatalogStats.build(split.history, items)
    plan.features.build_parts(stats, split.history, items)
    return stats.warm()


def _target(stats: CatalogStats, plan: RetrievalPlan, q: Query, inp: pd.DataFrame) -> EvalTarget:
    uh = UserHistory.from_frame(inp, stats)
    ts, tz = q.rank_time()
    query = plan.features.query(stats, uh, query_time(ts, tz, q.query_time_known))
    allowed = stats.known.copy()
    allowed[uh.idx[uh.idx >= 0]] = True
    target = int(stats.index_of(np.array([q.target_item]))[0])
    new = not (target >= 0 and target in set(uh.idx.tolist()))
    return EvalTarget(stats, query, allowed, target, new, context=(q, inp))


def query_matrix(split: DevSplit, q: Query, plan: RetrievalPlan) -> np.ndarray:
    """The feature rows of every rankable POI for one query (what the ranker sees; for tests)."""
    stats = catalog_of(split, plan)
    by_hist = {str(u): g for u, g in split.history.groupby(C.USER, sort=False)}
    by_test = {str(u): g for u, g in split.test.groupby(C.USER, sort=False)}
    t = _target(stats, plan, q, user_input(split, q, by_hist, by_test))
    return plan.features.every_item(stats, t.query)[t.allowed]


def _pick(
    queries: list[Query], wishes: Callable[[Query], str | None] | None, sample: int | None, seed: int
) -> tuple[list[Query], list[str | None]]:
    texts: list[str | None] = [None] * len(queries)  # each query's request text, aligned with them
    if wishes is not None:
        worded = [(q, w) for q in queries if (w := wishes(q))]
        queries, texts = [q for q, _ in worded], [w for _, w in worded]
    if sample is not None and sample < len(queries):
        pick = np.sort(np.random.default_rng(seed).choice(len(queries), size=sample, replace=False))
        queries, texts = [queries[i] for i in pick], [texts[i] for i in pick]
    return queries, texts


def evaluate(
    split: DevSplit,
    ranker: Ranker,
    plan: RetrievalPlan,
    *,
    pool_size: int = POOL,
    sample: int | None = None,
    seed: int = 0,
    reranker: Reranker | None = None,
    rerank_top: int = 20,
    blend_weight: float = 0.4,
    wishes: Callable[[Query], str | None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """``wishes``: the request text of a target (a chat wish), or None to leave the target out;
    with it only targets that have one are evaluated, and only the reranker reads the text."""
    t_start = time.perf_counter()
    stats = catalog_of(split, plan)
    kinds = KnownCategories(split.test)
    queries, texts = _pick(split.queries, wishes, sample, seed)
    by_hist = {str(u): g for u, g in split.history.groupby(C.USER, sort=False)}
    by_test = {str(u): g for u, g in split.test.groupby(C.USER, sort=False)}

    def targets() -> Iterator[EvalTarget]:
        for q, text in zip(queries, texts, strict=True):
            t = _target(stats, plan, q, user_input(split, q, by_hist, by_test))
            at = q.rank_time()[0]
            t.text = text
            t.kind_of = partial(_known_kind, kinds, stats, at)
            yield t

    llm = None
    if reranker is not None:
        outer = reranker

        def rerank(t: EvalTarget, cands: list[Candidate]) -> Reranked:
            q, inp = t.context
            return outer(q, inp, cands, t.text)

        llm = (rerank, rerank_top)
    tally = run(
        targets(),
        plan.features,
        plan.source_plan(None),
        ranker,
        pool_size,
        baseline_scores(plan.features),
        llm,
        progress,
    )
    result = report(
        tally,
        ranker,
        reranked=reranker is not None,
        with_text=wishes is not None,
        blend_weight=blend_weight,
        how=Reporting("acc", splits=("revisit", "new place")),
    )
    result["pool_size"] = pool_size
    result["beyond_pool_order"] = "stage-1 heuristic blend (user visits, transitions, distance, popularity)"
    result["timing_s"]["total"] = round(time.perf_counter() - t_start, 2)
    result["setting"] = _setting(queries, wishes is not None)
    result["sample"] = sample
    result["seed"] = seed
    result["behaviour_model"] = behaviour_status(stats)  # trained on the split's history only
    return result


def _known_kind(kinds: KnownCategories, stats: CatalogStats, at: pd.Timestamp, i: int) -> str | None:
    return kinds.at(str(stats.item_ids[i]), at)


def _setting(queries: list[Query], with_text: bool) -> dict[str, str]:
    return {
        "request_text": "a chat wish for the target's kind (evaluation/chat_wishes.yaml), read by the "
        "reranker only; targets of kinds the bank lacks left out"
        if with_text
        else "none",
        "query_time": "the target's own time"
        if not queries or queries[0].query_time_known
        else "unknown: ranked at the time of the check-in before the target",
        "input": "the history and the target trajectory's prefix only"
        if queries and queries[0].prefix_only
        else "the history and every test row of the user before the target",
    }


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return _table_rows(result, KEYS)
