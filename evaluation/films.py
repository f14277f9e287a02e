"""``chronotope eval --format movielens``: the sequential "what next?" protocol of
shared/datasets/movielens_small/README.md.

Each target (a person's rating: the test file's rows, or with ``--test dev`` each person's last
5-core rating of the history) is ranked at its own time over the catalog (the 5-core films or all
films), never showing a film the person already rated. The catalog statistics read only the
ratings before the target's time (domains/films/signals.py) and the person's history is their
ratings before the target; the ranker is trained on the same history with each target person's
ratings from the target on left out, so no target is ever a training example. Every target
counts; one outside the ranked set is a miss.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import columns as C
from core.errors import InvalidInputError
from core.kinds import split_kinds
from domains.films.formats import MOVIELENS
from domains.films.retrieval import FILM, film_plan
from domains.films.training import five_core, ratings_in_order
from evaluation.llm_calibration import position_study
from evaluation.ranking import EvalTarget, Reporting, Reranker, report, run
from evaluation.ranking import table_rows as _table_rows
from retrieval.behaviour_source import behaviour_status
from retrieval.catalog_stats import CatalogStats
from retrieval.features import FeatureSet
from retrieval.rankers import Ranker
from retrieval.training import POOL, query_time
from retrieval.user_history import UserHistory

KEYS = ("n", "hr@1", "hr@5", "hr@10", "hr@20", "ndcg@10", "mrr")
HOW = Reporting("hr", (1, 5, 10, 20), ("in a sitting", "new sitting"))
SITTING_S = 3600.0


@dataclass
class FilmsSplit:
    history: pd.DataFrame  # events (ratings and tags) the targets may use, in time order
    items: pd.DataFrame  # the catalog (every film of movies.csv)
    targets: pd.DataFrame  # user_id, item_id, ts: one row per target, in time order
    core_items: set[str]  # the 5-core films (of the history and the targets together)


def load_split(folder: Path, test: Path | str) -> FilmsSplit:
    """``test``: a ratings CSV of targets, or "dev" (each person's last 5-core rating of the
    history, which then leaves the history with everything the person did from it on)."""
    parsed = MOVIELENS.parse(Path(folder), None)
    events = parsed.events.assign(_order=np.arange(len(parsed.events)))
    if str(test) == "dev":
        ratings = ratings_in_order(events)
        core = five_core(ratings)
        last = ratings[core].groupby(C.USER, sort=False).tail(1)
        targets = last[[C.USER, C.ITEM, C.TIME, "_order"]]
    else:
        targets = _read_targets(Path(test))
    events = _named(events, parsed.items)
    history = _before_targets(events, targets)
    both = pd.concat(
        [ratings_in_order(history)[[C.USER, C.ITEM]], targets[[C.USER, C.ITEM]]], ignore_index=True
    )
    core_items = set(both[five_core(both)][C.ITEM].astype(str))
    targets = targets.assign(_ts=pd.to_datetime(targets[C.TIME], utc=True))
    targets = targets.sort_values("_ts", kind="stable").drop(columns="_ts").reset_index(drop=True)
    assert parsed.items is not None  # the format always reads movies.csv
    return FilmsSplit(history.drop(columns="_order"), parsed.items, targets, core_items)


def _named(events: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Each event with its film's title and genres (as the store's events frame has them)."""
    by_id = items.set_index(items["item_id"].astype(str))
    ids = events[C.ITEM].astype(str)
    return events.assign(
        **{C.ITEM_NAME: ids.map(by_id["name"]).to_numpy(), C.CATEGORY: ids.map(by_id["category"]).to_numpy()}
    )


def _read_targets(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file (a ratings CSV of targets, or --test dev)")
    raw = pd.read_csv(path, dtype=str)
    missing = [c for c in ("userId", "movieId", "timestamp") if c not in raw]
    if missing:
        raise InvalidInputError(f"{path}: needs columns userId, movieId, timestamp (missing {missing})")
    secs = pd.to_numeric(raw["timestamp"], errors="coerce")
    if secs.isna().any():
        raise InvalidInputError(
            f"{path}: line {int(secs.isna().to_numpy().argmax()) + 2}: unreadable timestamp"
        )
    return pd.DataFrame(
        {
            C.USER: raw["userId"].astype(str),
            C.ITEM: raw["movieId"].astype(str),
            C.TIME: pd.to_datetime(secs, unit="s", utc=True),
            "_order": np.inf,
        }
    )


def _before_targets(events: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """The events minus, for each target's person, everything from the target on (the target row
    itself, same-second rows after it, anything later)."""
    at = targets.set_index(C.USER)
    t_time = events[C.USER].map(pd.to_datetime(at[C.TIME], utc=True))
    t_order = events[C.USER].map(at["_order"])
    ts = pd.to_datetime(events[C.TIME], utc=True)
    later = (ts > t_time) | ((ts == t_time) & (events["_order"] >= t_order))
    return events[~later.fillna(False).to_numpy()].reset_index(drop=True)


def catalog_stats(split: FilmsSplit) -> CatalogStats:
    plan = film_plan()
    stats = CatalogStats.build(split.history, split.items)
    plan.features.build_parts(stats, split.history, split.items)
    return stats


def baseline_scores(fset: FeatureSet) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    col = fset.col

    def scores(f: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "popularity (all time)": f[:, col["popularity_log"]],
            "popular now (90-day half-life)": f[:, col["popular_now_log"]],
            "sequence co-occurrence": f[:, col["seq_l10"]],
            "similar raters": f[:, col["similar_raters"]],
            "heuristic blend": fset.heuristic(f),
        }

    return scores


def evaluate(
    split: FilmsSplit,
    ranker: Ranker,
    *,
    catalog: str = "5core",
    pool_size: int = POOL,
    sample: int | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    reranker: tuple[Reranker, int] | None = None,
    blend_weight: float = 0.4,
) -> dict[str, Any]:
    """``reranker``: (the LLM reranker, how many of the top it reorders); its EvalTarget carries
    the person's events before the target as ``context`` (user id, events frame, time)."""
    if catalog not in ("5core", "all"):
        raise InvalidInputError(f"--catalog {catalog!r}: 5core or all")
    t_start = time.perf_counter()
    plan = film_plan()
    stats = catalog_stats(split)
    rankable = np.ones(stats.n, dtype=bool)
    if catalog == "5core":
        rankable = np.isin(stats.item_ids.astype(str), list(split.core_items))
    targets = split.targets
    if sample is not None and sample < len(targets):
        keep = np.sort(np.random.default_rng(seed).choice(len(targets), size=sample, replace=False))
        targets = targets.iloc[keep].reset_index(drop=True)
    ratings = ratings_in_order(split.history)
    by_user = {str(u): g for u, g in ratings.groupby(C.USER, sort=False)}
    events_of = {str(u): g for u, g in split.history.groupby(C.USER, sort=False)} if reranker else {}
    names = split.items.set_index(split.items["item_id"].astype(str))
    titles = names["name"].reindex(stats.item_ids.astype(str)).to_numpy()
    genres = [split_kinds(k) for k in names["category"].reindex(stats.item_ids.astype(str)).to_numpy()]

    def each() -> Iterator[EvalTarget]:
        for row in targets.itertuples(index=False):
            user = str(getattr(row, C.USER))
            t = _target(stats, plan.features, row, by_user.get(user), rankable)
            t.context = (user, events_of.get(user), pd.Timestamp(getattr(row, C.TIME)))
            t.name_of = lambda i: titles[i] if isinstance(titles[i], str) else None
            t.kinds_of = lambda i: tuple(genres[i])
            t.kind_of = lambda i: genres[i][0] if genres[i] else None
            yield t

    tally = run(
        each(),
        plan.features,
        plan.source_plan(None),
        ranker,
        pool_size,
        baseline_scores(plan.features),
        reranker,
        progress,
    )
    out = report(
        tally, ranker, reranked=reranker is not None, with_text=False, blend_weight=blend_weight, how=HOW
    )
    if reranker is not None and tally.sweep:
        out["llm"]["position_study"] = position_study(
            tally.sweep, np.array(tally.feature_ranks), blend_weight
        )
    out["catalog"] = f"{catalog} ({int(rankable.sum())} films)"
    out["pool"]["from"] = (
        "the union of the films sources (sequence, similar raters, popular now, genre taste, behaviour)"
    )
    # trained on this history (each person's target and after left out)
    out["behaviour_model"] = behaviour_status(stats)
    out["timing_s"]["total"] = round(time.perf_counter() - t_start, 2)
    out["sample"], out["seed"] = sample, seed
    return out


def _target(
    stats: CatalogStats, fset: FeatureSet, row: Any, mine: pd.DataFrame | None, rankable: np.ndarray
) -> EvalTarget:
    at = pd.Timestamp(getattr(row, C.TIME))
    hist = mine if mine is not None else pd.DataFrame(columns=[C.USER, C.ITEM, C.TIME, C.RATING])
    uh = UserHistory.from_frame(hist, stats)
    if uh.user_id is None:
        uh.user_id = str(getattr(row, C.USER))
    q = fset.query(stats, uh, query_time(at, 0))
    allowed = rankable.copy()
    allowed[uh.idx[uh.idx >= 0]] = False
    target = int(stats.index_of(np.array([str(getattr(row, C.ITEM))]))[0])
    view = q.parts[FILM].view
    new_sitting = not view.n or (at.value / 1e9 - float(view.times[-1])) > SITTING_S
    return EvalTarget(stats, q, allowed, target, bool(new_sitting))


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return _table_rows(result, KEYS)
