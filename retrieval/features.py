"""Ranking features: feature groups arranged into a domain's feature set.

A **feature group** owns some columns: it may build a part of the catalog statistics once (``build``,
``grow`` on new events), a part of each query (``query``), and fills its columns for chosen rows
(``fill``) in O(rows). ``BEHAVIOUR`` is the domain-neutral group (how often and how lately the
person went, transitions, co-visitation, similar users, popularity, the item's rhythm); a domain
adds its own (distance for places, genres and ratings for films) and names the column order of
its ``FeatureSet``. Serving fills the features of its candidates only (retrieval.candidate_pool);
training and evaluation fill every item with the same code, so an item's features are identical in
both. No information after the query time may enter: callers pass only the user's events before
it, and the statistics are built from rows before the earliest query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from retrieval.catalog_stats import CatalogStats
from retrieval.query import Query, QueryTime, QueryVectors, query_vectors
from retrieval.sparse_vector import SparseVector, gather
from retrieval.user_history import UserHistory

Columns = Mapping[str, int]


class FeatureGroup(Protocol):
    """Columns of one kind of evidence; see the module docstring."""

    @property
    def name(self) -> str: ...

    @property
    def columns(self) -> tuple[str, ...]: ...

    def build(self, stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> Any: ...

    def grow(self, part: Any, stats: CatalogStats, events: pd.DataFrame) -> Any: ...

    def query(
        self, stats: CatalogStats, base: QueryVectors, user: UserHistory, args: Mapping[str, Any]
    ) -> Any: ...

    def fill(self, f: np.ndarray, col: Columns, stats: CatalogStats, q: Query, rows: np.ndarray) -> None: ...


class BehaviourGroup:
    """What the person and everyone else did, for any kind of item."""

    name = "behaviour"
    columns = (
        "user_count_log",
        "user_share",
        "steps_since_visit_log",
        "hours_since_visit_log",
        "user_hour_affinity",
        "user_hour_affinity_share",
        "user_weekend_match",
        "user_trans_count",
        "user_trans_prob",
        "global_trans_prob",
        "global_trans_count_log",
        "covis_score",
        "covis_rank_score",
        "popularity_log",
        "recent_popularity_log",
        "gap_since_last_h_log",
        "user_n_events_log",
        "visited_before",
        "user_recent10_count",
        "user_recent50_share",
        "user_dow_affinity_share",
        "user_trans_any_prob",
        "user_trans_prev2_prob",
        # the item's own rhythm (all users, training history): helps items new to the person
        "item_hour_share",
        "item_hour_count_log",
        "item_weekend_match",
        "user_knn_score",
        "user_knn_rank_score",
        # "what next?": the query's time is the latest event's, the next one's unknown
        "query_time_known",
        "user_next_hour_affinity_share",  # at the latest event's hour plus the person's typical gap
        # how often this person goes somewhere new (all history, last 20 events)
        "user_novelty_rate",
        "user_recent_novelty_rate",
    )

    def build(self, stats: CatalogStats, history: pd.DataFrame, items: pd.DataFrame | None) -> Any:
        return None

    def grow(self, part: Any, stats: CatalogStats, events: pd.DataFrame) -> Any:
        return None

    def query(
        self, stats: CatalogStats, base: QueryVectors, user: UserHistory, args: Mapping[str, Any]
    ) -> Any:
        return None

    def fill(self, f: np.ndarray, col: Columns, stats: CatalogStats, q: Query, rows: np.ndarray) -> None:
        b = q.base
        if b.m:
            self._personal(f, col, b, rows)
        else:
            f[:, col["steps_since_visit_log"]] = 8.0
            f[:, col["hours_since_visit_log"]] = 10.0
            f[:, col["gap_since_last_h_log"]] = 10.0
        pop = stats.popularity[rows]
        f[:, col["popularity_log"]] = np.log1p(pop)
        # row by row (not a BLAS product), so an item's value does not depend on the rows beside it
        at_hour = (stats.hour_hist[rows] * b.hour_kernel).sum(axis=1)
        f[:, col["item_hour_share"]] = (at_hour + 0.1) / (pop + 1.0)
        f[:, col["item_hour_count_log"]] = np.log1p(at_hour)
        wshare = (stats.weekend_count[rows] + 0.3) / (pop + 1.0)
        f[:, col["item_weekend_match"]] = wshare if b.when.weekend else 1 - wshare
        f[:, col["recent_popularity_log"]] = np.log1p(stats.recent_popularity[rows])
        f[:, col["user_n_events_log"]] = np.log1p(b.m)
        f[:, col["query_time_known"]] = float(b.time_known)

    @staticmethod
    def _personal(f: np.ndarray, col: Columns, b: QueryVectors, rows: np.ndarray) -> None:
        # where each row sits among the person's items, looked up once for every per-item value
        slot, seen = b_slots(b, rows)

        def at_items(name: str) -> np.ndarray:  # 0 where the person never went
            return gather(b.per_item[name], slot, seen)

        cnt = at_items("count")
        safe = np.maximum(cnt, 1)
        f[:, col["user_count_log"]] = np.log1p(cnt)
        f[:, col["user_share"]] = cnt / b.m
        f[:, col["steps_since_visit_log"]] = np.where(seen, np.log1p(b.m - at_items("last_pos")), 8.0)
        f[:, col["hours_since_visit_log"]] = np.where(
            seen, np.log1p(np.maximum(b.t_h - at_items("last_t"), 0)), 10.0
        )
        aff = at_items("aff")
        f[:, col["user_hour_affinity"]] = np.log1p(aff)
        f[:, col["user_hour_affinity_share"]] = np.where(cnt > 0, aff / safe, 0)
        f[:, col["user_weekend_match"]] = np.where(cnt > 0, at_items("weekend") / safe, 0)
        f[:, col["user_next_hour_affinity_share"]] = np.where(cnt > 0, at_items("next_aff") / safe, 0)
        f[:, col["visited_before"]] = seen
        f[:, col["user_recent10_count"]] = at_items("recent10")
        f[:, col["user_recent50_share"]] = at_items("recent50")
        if "dow" in b.per_item:
            f[:, col["user_dow_affinity_share"]] = np.where(cnt > 0, at_items("dow") / safe, 0)
        for name, key in (
            ("user_trans_any_prob", "trans_any"),
            ("user_trans_prev2_prob", "trans_prev2"),
            ("user_trans_count", "trans_count"),
            ("user_trans_prob", "trans_prob"),
        ):
            if key in b.per_item:
                f[:, col[name]] = at_items(key)
        g = b.global_trans.at(rows)
        rs = b.global_trans_row_sum
        f[:, col["global_trans_prob"]] = g / rs if rs > 0 else 0
        f[:, col["global_trans_count_log"]] = np.log1p(g)
        f[:, col["gap_since_last_h_log"]] = np.log1p(b.gap_h)
        f[:, col["covis_score"]] = b.covis.at(rows)
        f[:, col["covis_rank_score"]] = b.covis.rank_score(rows)
        if b.knn is not None:
            f[:, col["user_knn_score"]] = b.knn.at(rows)
            f[:, col["user_knn_rank_score"]] = b.knn.rank_score(rows)
        f[:, col["user_novelty_rate"]], f[:, col["user_recent_novelty_rate"]] = b.novelty


def b_slots(b: QueryVectors, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each row sits among the person's items (position, found)."""
    return SparseVector(b.n, b.items, np.ones(len(b.items))).slots(rows)


BEHAVIOUR = BehaviourGroup()


@dataclass(frozen=True)
class FeatureSet:
    """A domain's features: its groups, the column order the ranker sees, the hand-weighted blend
    that picks the stage-1 pool (and serves as the 'heuristic' ranker), and the columns the learned
    model leaves out."""

    columns: tuple[str, ...]
    groups: tuple[FeatureGroup, ...]
    stage1: Mapping[str, float]
    not_for_model: tuple[str, ...] = ()
    domain: str = ""  # whose features these are (a model file records it)
    # A column's earlier name -> its name now: a model trained before a rename keeps its column
    # instead of reading NaN for it (which silently costs accuracy).
    former_names: Mapping[str, str] = field(default_factory=dict)
    col: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "col", {name: i for i, name in enumerate(self.columns)})
        owned = [c for g in self.groups for c in g.columns]
        if sorted(owned) != sorted(self.columns):
            missing = set(self.columns) - set(owned)
            extra = set(owned) - set(self.columns)
            raise ValueError(
                f"feature set columns do not match its groups (missing {missing}, extra {extra})"
            )
        unknown = set(self.stage1) - set(self.columns)
        if unknown:
            raise ValueError(f"stage-1 weights for unknown features: {sorted(unknown)}")

    @property
    def model_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.not_for_model)

    def build_parts(
        self,
        stats: CatalogStats,
        history: pd.DataFrame,
        items: pd.DataFrame | None,
        prebuilt: Mapping[str, Any] | None = None,
    ) -> None:
        """Each group's catalog part, kept on ``stats.parts`` (built once, read by every query).
        ``prebuilt``: group name -> what it adopts instead of building (a saved trained model:
        serving loads one, it does not train it)."""
        for g in self.groups:
            if prebuilt and g.name in prebuilt:
                stats.parts[g.name] = g.adopt(prebuilt[g.name], stats)  # type: ignore[attr-defined]
            else:
                stats.parts[g.name] = g.build(stats, history, items)

    def group(self, name: str) -> FeatureGroup | None:
        return next((g for g in self.groups if g.name == name), None)

    def grow_parts(self, old: CatalogStats, new: CatalogStats, events: pd.DataFrame) -> None:
        for g in self.groups:
            new.parts[g.name] = g.grow(old.parts.get(g.name), new, events)

    def query(
        self, stats: CatalogStats, user: UserHistory, when: QueryTime, args: Mapping[str, Any] | None = None
    ) -> Query:
        base = query_vectors(stats, user, when)
        args = args or {}
        parts = {g.name: g.query(stats, base, user, args) for g in self.groups}
        return Query(base, parts, args)

    def at(self, stats: CatalogStats, q: Query, rows: np.ndarray) -> np.ndarray:
        """Feature rows for ``rows``: each row's values are the same whichever rows come with it."""
        rows = np.asarray(rows, dtype=np.int64)
        f = np.zeros((len(rows), len(self.columns)), dtype=np.float32)
        for g in self.groups:
            g.fill(f, self.col, stats, q, rows)
        return f

    def every_item(self, stats: CatalogStats, q: Query) -> np.ndarray:
        """Features for the whole catalog (training and evaluation)."""
        return self.at(stats, q, np.arange(stats.n))

    def heuristic(self, f: np.ndarray) -> np.ndarray:
        """The hand-weighted blend: the stage-1 pool selector and the 'heuristic' ranker."""
        # summed in the weights' order in the features' own precision, so a pool is the same
        # whichever code path scores it
        out = np.zeros(len(f), dtype=f.dtype)
        for i, (name, w) in enumerate(self.stage1.items()):
            term = w * f[:, self.col[name]]
            out = term if i == 0 else out + term
        return out

    def columns_of(self, names: Sequence[str], f: np.ndarray) -> np.ndarray:
        """``f`` rearranged to ``names`` (a model trained on another list); a name this set does
        not compute is NaN, LightGBM's missing value; a former name reads its renamed column."""
        x = np.full((len(f), len(names)), np.nan, dtype=np.float32)
        for j, nm in enumerate(names):
            c = self.col.get(self.former_names.get(nm, nm))
            if c is not None:
                x[:, j] = f[:, c]
        return x
