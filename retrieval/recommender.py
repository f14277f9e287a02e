"""The in-memory recommender shared by the product and the evaluation harness.

fit() builds catalog statistics from a history; recommend() applies the request's filters,
gathers the stage-1 pool from the candidate sources (retrieval.candidate_pool: the places the
heuristic blend puts first, plus extra sources such as embedding search), computes features for
those places only, ranks them with the configured ranker and records which sources found each.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core import columns as C
from core.geo import km_between
from retrieval.candidate_pool import DEPTH, candidate_pool
from retrieval.catalog_stats import CatalogStats, distance_at
from retrieval.features import FEATURES, QueryVectors, query_vectors
from retrieval.feedback import FeedbackSignals
from retrieval.rankers import LearnedRanker, Ranker, load_ranker
from retrieval.training import POOL, local_hour_weekend, local_weekday
from retrieval.types import Candidate, RankedList, RequestContext
from retrieval.user_history import UserHistory

COL = {name: i for i, name in enumerate(FEATURES)}
NEARBY_KM = 1.0
POPULAR_TOP = 50
COVIS_TOP = 50


def km_to(ref: tuple[float, float], stats: CatalogStats, i: int) -> float:
    """km from ``ref`` to place ``i`` (50, "far", when it has no coordinates)."""
    lat, lon = float(stats.lat[i]), float(stats.lon[i])
    return 50.0 if np.isnan(lat) or np.isnan(lon) else km_between(ref[0], ref[1], lat, lon)


class Recommender:
    def __init__(self, stats: CatalogStats, ranker: Ranker, items: pd.DataFrame) -> None:
        self.stats = stats
        self.ranker = ranker
        self.ranker_refused: tuple[str, ...] = ()  # model files that did not load (load_ranker)
        self._items = (
            items.assign(item_id=items["item_id"].astype(str)).drop_duplicates("item_id").set_index("item_id")
            if len(items) and "item_id" in items
            else pd.DataFrame(columns=["name", "category", "lat", "lon"], index=pd.Index([], name="item_id"))
        )
        self._sync_items()

    def _sync_items(self) -> None:
        """Item attributes aligned with the catalog indices (after fit or add_events)."""
        ids = pd.Index(self.stats.item_ids.astype(str), name="item_id")
        it = self._items
        self.names = (
            it["name"].reindex(ids).to_numpy(dtype=object) if "name" in it else np.full(len(ids), None)
        )
        self.categories = (
            it["category"].reindex(ids).to_numpy(dtype=object)
            if "category" in it
            else np.full(len(ids), None)
        )
        self._norm_cats = np.array([c.lower() if isinstance(c, str) else "" for c in self.categories])
        self.item_frame = pd.DataFrame(
            {
                "item_id": ids,
                "name": self.names,
                "category": self.categories,
                "lat": self.stats.lat,
                "lon": self.stats.lon,
            }
        )

    @classmethod
    def fit(
        cls,
        history: pd.DataFrame,
        items: pd.DataFrame,
        *,
        ranker: str = "learned",
        model_path: Path | None = None,
        models_dir: Path | None = None,
    ) -> Recommender:
        """history: events frame (core.columns); items: item_id, name, category, lat, lon.

        ``ranker``: "learned" (the model at ``model_path``, else the newest in ``models_dir``, else
        the heuristic: degrade, never fail), "heuristic", or a model file path."""
        stats = CatalogStats.build(history, items)
        if model_path is not None and ranker == "learned":
            return cls(stats, LearnedRanker.load(Path(model_path)), items)
        refused: list[str] = []
        out = cls(stats, load_ranker(ranker, models_dir, refused), items)
        out.ranker_refused = tuple(refused)
        return out

    def with_events(self, events: pd.DataFrame) -> Recommender:
        """A new Recommender with ``events`` folded into the shared statistics (popularity, time
        profiles, transitions; new items join the catalog); this one is untouched, so requests
        reading it meanwhile see one consistent state. Per-user state is the caller's."""
        if not len(events):
            return self
        out = copy.copy(self)
        out.stats = self.stats.with_events(events)
        if out.stats.n != self.stats.n:
            e = events.dropna(subset=[C.ITEM])
            extra = pd.DataFrame(
                {
                    "name": e[C.ITEM_NAME].to_numpy() if C.ITEM_NAME in e else None,
                    "category": e[C.CATEGORY].to_numpy() if C.CATEGORY in e else None,
                    "lat": e[C.LAT].to_numpy() if C.LAT in e else np.nan,
                    "lon": e[C.LON].to_numpy() if C.LON in e else np.nan,
                },
                index=pd.Index(e[C.ITEM].astype(str).to_numpy(), name="item_id"),
            )
            extra = extra[~extra.index.duplicated(keep="last") & ~extra.index.isin(self._items.index)]
            out._items = pd.concat([self._items, extra]) if len(self._items) else extra
        out._sync_items()
        return out

    def add_events(self, events: pd.DataFrame) -> None:
        """``with_events`` in place, for callers that own their Recommender (scripts, tests)."""
        self.__dict__.update(self.with_events(events).__dict__)

    def _filters(self, ctx: RequestContext, uh: UserHistory, ref: tuple[float, float] | None) -> np.ndarray:
        ok = np.ones(self.stats.n, dtype=bool)
        norm = self._norm_cats
        if ctx.include_categories:
            wanted = {c.lower() for c in ctx.include_categories}
            ok &= np.array([any(w in c for w in wanted) for c in norm])
        if ctx.exclude_categories:
            banned = {c.lower() for c in ctx.exclude_categories}
            ok &= ~np.array([any(b in c for b in banned) for c in norm])
        if ctx.include_kinds:
            ok &= np.isin(norm, [c.lower() for c in ctx.include_kinds])
        if ctx.exclude_kinds:
            ok &= ~np.isin(norm, [c.lower() for c in ctx.exclude_kinds])
        if ctx.max_distance_km is not None and ref is not None:
            ok &= distance_at(self.stats, ref) <= ctx.max_distance_km
        if ctx.exclude_visited and uh.n:
            ok[uh.idx[uh.idx >= 0]] = False
        if ctx.exclude_items:
            idx = self.stats.index_of(np.array(ctx.exclude_items, dtype=object))
            ok[idx[idx >= 0]] = False
        ok &= ~np.isnan(self.stats.lat) | (ref is None)
        return ok

    def recommend(
        self,
        user_id: str,
        user_history: pd.DataFrame,
        ctx: RequestContext,
        k: int = 10,
        *,
        pool_size: int = POOL,
        source_depth: int = DEPTH,
        extra_sources: dict[str, list[str]] | None = None,
        extra_features: dict[str, dict[str, float]] | None = None,
        candidate_filter: Callable[[pd.DataFrame], pd.Series] | None = None,
        history: UserHistory | None = None,
        ranker: Ranker | None = None,
        feedback: FeedbackSignals | None = None,
    ) -> RankedList:
        """Top ``k`` for one user at ``ctx.time``. ``user_history`` must hold only events before
        that time (the caller's job; nothing later may reach the features). An unknown user or an
        empty history is a cold start: request location + popularity + time-of-day profiles.
        ``extra_sources`` join the pool with their names as provenance; ``extra_features`` are shown
        on the candidates but never fed to the model (it is trained on a fixed list).
        ``candidate_filter`` gets the catalog frame (item_id, name, category, lat, lon) and returns
        a boolean mask of items allowed. ``history``: ``user_history`` already converted
        (serving precomputes it; evaluation passes a different frame per query). ``ranker``:
        another than the loaded one (an experiment's arm). ``feedback``: the user's reactions to
        earlier recommendations shift the ranker's scores (retrieval.feedback); a shifted place
        shows ``feedback_shift`` (in standard deviations of the pool's scores) and why."""
        t0 = time.perf_counter()
        uh = history if history is not None else UserHistory.from_frame(user_history, self.stats)
        ts = pd.Timestamp(ctx.time).tz_convert("UTC")
        # Local time of the request: the offset of the user's latest event (their time zone).
        off = (
            int(user_history[C.TZ_OFFSET].iloc[-1])
            if len(user_history) and C.TZ_OFFSET in user_history
            else 0
        )
        hour, weekend = local_hour_weekend(ts, off)
        where = (ctx.lat, ctx.lon) if ctx.lat is not None and ctx.lon is not None else None
        q = query_vectors(
            self.stats, uh, ts.value / 3.6e12, hour, weekend, where=where, weekday=local_weekday(ts, off),
            time_known=ctx.time_known,
        )  # fmt: skip
        # the request's place, else the last check-in's (None: a cold start without a place)
        ref = q.ref if where is not None or q.m else None
        allowed = self.stats.known.copy()
        allowed[uh.idx[uh.idx >= 0]] = True
        extra_idx: dict[str, np.ndarray] = {}
        for name, ids in (extra_sources or {}).items():
            ix = self.stats.index_of(np.array(ids, dtype=object))
            extra_idx[name] = ix[ix >= 0]
            allowed[extra_idx[name]] = True  # e.g. new catalog items found by embedding search
        allowed &= self._filters(ctx, uh, ref)
        if candidate_filter is not None:
            allowed &= np.asarray(candidate_filter(self.item_frame), dtype=bool)
        extra = np.concatenate(list(extra_idx.values())) if extra_idx else None
        cp = candidate_pool(self.stats, q, allowed, pool_size, extra=extra, depth=source_depth)
        pool, f = cp.rows, cp.features
        t1 = time.perf_counter()
        ranker = ranker or self.ranker
        scores = ranker.score(f) if len(pool) else np.zeros(0)
        shifted: dict[int, float] = {}
        displaced: dict[str, str] = {}
        if feedback is not None and len(pool):
            ids = self.stats.item_ids[pool].astype(str)
            unshifted = scores
            scores, shifted = feedback.adjust(list(ids), list(self.categories[pool]), scores)
        order = np.argsort(-scores, kind="stable")[:k]
        if shifted:  # the places the feedback pushed out of the list, for the trace
            kept = set(order.tolist())
            for p in np.argsort(-unshifted, kind="stable")[:k]:
                if int(p) not in kept and int(p) in shifted and feedback is not None:
                    i = int(pool[p])
                    displaced[str(ids[p])] = feedback.why(str(ids[p]), self.categories[i], shifted[int(p)])
        t2 = time.perf_counter()
        sources = self._pool_sources(q, pool, f, extra_idx)
        out: list[Candidate] = []
        why_shifted: dict[str, str] = {}
        for pos, s in zip(order, scores[order], strict=True):
            i = int(pool[pos])
            item_id = str(self.stats.item_ids[i])
            feats = {name: round(float(f[pos, j]), 4) for j, name in enumerate(FEATURES)}
            feats.update((extra_features or {}).get(item_id, {}))
            if ref is not None:
                feats["distance_km"] = round(float(km_to(ref, self.stats, i)), 3)
            if (shift := shifted.get(int(pos))) is not None and feedback is not None:
                feats["feedback_shift"] = shift
                why_shifted[item_id] = feedback.why(item_id, self.categories[i], shift)
            out.append(
                Candidate(
                    item_id=item_id,
                    name=self.names[i] if isinstance(self.names[i], str) else None,
                    category=self.categories[i] if isinstance(self.categories[i], str) else None,
                    lat=None if np.isnan(self.stats.lat[i]) else float(self.stats.lat[i]),
                    lon=None if np.isnan(self.stats.lon[i]) else float(self.stats.lon[i]),
                    sources=[name for name, hit in sources.items() if hit[pos]] or ["ranked"],
                    features=feats,
                    score=round(float(s), 6),
                )
            )
        return RankedList(
            candidates=out,
            ranker=ranker.name,
            pool_size=int(len(pool)),
            timings={"features_ms": round((t1 - t0) * 1000, 2), "rank_ms": round((t2 - t1) * 1000, 2)},
            pool_sources={name: int(hit.sum()) for name, hit in sources.items()},
            places_scored=cp.scored,
            feedback={"shifted_in_pool": len(shifted), "shown": why_shifted, "displaced": displaced}
            if feedback is not None
            else {},
        )

    def _pool_sources(
        self, q: QueryVectors, pool: np.ndarray, f: np.ndarray, extra_idx: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Which sources found each pool place (a place may come from several; none: "ranked")."""
        out = {
            "repeat": f[:, COL["visited_before"]] > 0,
            "markov": (f[:, COL["global_trans_prob"]] > 0) | (f[:, COL["user_trans_any_prob"]] > 0),
            "nearby": f[:, COL["dist_last_km_log"]] <= np.log1p(NEARBY_KM),
            "collaborative": np.isin(pool, q.covis.top(COVIS_TOP)) & (f[:, COL["covis_score"]] > 0),
            "popular": np.isin(pool, self.stats.popular_order[:POPULAR_TOP]),
        }
        for name, ix in extra_idx.items():
            out[name] = np.isin(pool, ix)
        return out
