"""The in-memory recommender shared by the product and the evaluation harness.

``fit`` builds the catalog statistics from a history with the domain's plan (its feature groups
build their parts); ``recommend`` applies the request's filters, gathers the stage-1 pool from the
named candidate sources (plus extra ones such as embedding search), computes features for those
items only, ranks them and records which sources found each.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import columns as C
from core.kinds import ItemKinds, split_kinds
from retrieval.behaviour_source import saved_behaviour
from retrieval.candidate_pool import CandidatePool, SourcePlan, candidate_pool, provenance
from retrieval.catalog_stats import CatalogStats
from retrieval.feedback import FeedbackSignals
from retrieval.plan import RetrievalPlan
from retrieval.query import Query, QueryTime, local_clock
from retrieval.rankers import LearnedRanker, Ranker, load_ranker
from retrieval.training import POOL
from retrieval.types import Candidate, RankedList, RequestContext
from retrieval.user_history import UserHistory


@dataclass
class Ask:
    """One recommendation request as retrieval sees it (the agent's per-request context fills it)."""

    ctx: RequestContext
    k: int = 10
    history: UserHistory | None = None  # the person's events before ``ctx.time``, as catalog indices
    utc_offset_min: int = 0  # the person's offset from UTC: local time of the request
    extra_sources: dict[str, list[str]] = field(default_factory=dict)  # e.g. embedding hits
    extra_features: dict[str, dict[str, float]] = field(default_factory=dict)  # shown, never fed to the model
    ranker: Ranker | None = None  # another than the loaded one (an experiment's arm)
    feedback: FeedbackSignals | None = None  # earlier reactions shift the scores (retrieval.feedback)


WIDEN_STEPS = 3  # a thin list's domain filter is loosened at most this many times (places: 2 km -> 4, 8, 16)


class Recommender:
    def __init__(
        self,
        stats: CatalogStats,
        ranker: Ranker,
        items: pd.DataFrame,
        plan: RetrievalPlan,
        sources: SourcePlan | None = None,
        pool_size: int = POOL,
    ) -> None:
        self.stats = stats
        self.ranker = ranker
        self.plan = plan
        self.sources = sources or plan.source_plan(None)
        self.pool_size = pool_size
        self.ranker_refused: tuple[str, ...] = ()  # model files that did not load (load_ranker)
        self._items = (
            items.assign(item_id=items["item_id"].astype(str)).drop_duplicates("item_id").set_index("item_id")
            if len(items) and "item_id" in items
            else pd.DataFrame(columns=["name", "category"], index=pd.Index([], name="item_id"))
        )
        self._sync_items()

    def _sync_items(self) -> None:
        """Item attributes aligned with the catalog indices (after fit or with_events)."""
        ids = pd.Index(self.stats.item_ids.astype(str), name="item_id")
        it = self._items

        def col(name: str) -> np.ndarray:
            return it[name].reindex(ids).to_numpy(dtype=object) if name in it else np.full(len(ids), None)

        self.names = col("name")
        kinds = col("kinds") if "kinds" in it else col("category")
        self.kinds = ItemKinds.of(list(kinds))
        self.categories = np.array([self.kinds.primary(i) for i in range(len(ids))], dtype=object)
        attrs = col("attributes")
        self._attrs = [a if isinstance(a, dict) else {} for a in attrs]
        self.item_frame = pd.DataFrame({"item_id": ids, "name": self.names, "category": self.categories})

    @classmethod
    def fit(
        cls,
        history: pd.DataFrame,
        items: pd.DataFrame,
        plan: RetrievalPlan,
        *,
        ranker: str = "learned",
        model_path: Path | None = None,
        models_dir: Path | None = None,
    ) -> Recommender:
        """history: events frame (core.columns); items: the catalog (item_id, name, category, ...).

        ``ranker``: "learned" (the model at ``model_path``, else the newest in ``models_dir``, else
        the heuristic: degrade, never fail), "heuristic", or a model file path."""
        stats = CatalogStats.build(history, items)
        # serving loads the behaviour model `chronotope index` saved; it never trains one
        saved = saved_behaviour(plan.features, models_dir) if models_dir is not None else None
        plan.features.build_parts(stats, history, items, saved)
        if model_path is not None and ranker == "learned":
            return cls(stats, LearnedRanker.load(Path(model_path), plan.features), items, plan)
        refused: list[str] = []
        out = cls(stats, load_ranker(ranker, models_dir, plan.features, refused), items, plan)
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
        self.plan.features.grow_parts(self.stats, out.stats, events)
        if out.stats.n != self.stats.n:
            e = events.dropna(subset=[C.ITEM])
            extra = pd.DataFrame(
                {
                    "name": e[C.ITEM_NAME].to_numpy() if C.ITEM_NAME in e else None,
                    "category": e[C.CATEGORY].to_numpy() if C.CATEGORY in e else None,
                },
                index=pd.Index(e[C.ITEM].astype(str).to_numpy(), name="item_id"),
            )
            extra["kinds"] = [split_kinds(c) for c in extra["category"]]
            extra = extra[~extra.index.duplicated(keep="last") & ~extra.index.isin(self._items.index)]
            out._items = pd.concat([self._items, extra]) if len(self._items) else extra
        out._sync_items()
        return out

    def add_events(self, events: pd.DataFrame) -> None:
        """``with_events`` in place, for callers that own their Recommender (scripts, tests)."""
        self.__dict__.update(self.with_events(events).__dict__)

    def history_of(self, frame: pd.DataFrame) -> UserHistory:
        return UserHistory.from_frame(frame, self.stats)

    def query(self, ask: Ask, uh: UserHistory) -> Query:
        ts = pd.Timestamp(ask.ctx.time).tz_convert("UTC")
        hour, weekend, weekday = local_clock(ts, ask.utc_offset_min)
        when = QueryTime(ts.value / 3.6e12, hour, weekend, weekday, ask.ctx.time_known)
        return self.plan.features.query(self.stats, uh, when, ask.ctx.args)

    def allowed(self, ask: Ask, q: Query, uh: UserHistory) -> tuple[np.ndarray, dict[str, Any] | None]:
        """Which items the request may be shown, and which filter left none (None: some left)."""
        ctx = ask.ctx
        ok = self.stats.known.copy()
        ok[uh.idx[uh.idx >= 0]] = True
        for ids in ask.extra_sources.values():
            ix = self.stats.index_of(np.array(ids, dtype=object))
            ok[ix[ix >= 0]] = True  # e.g. new catalog items found by embedding search
        steps: list[tuple[str, np.ndarray | None]] = [
            (
                "include_categories",
                self.kinds.mask_words(ctx.include_categories) if ctx.include_categories else None,
            ),
            (
                "exclude_categories",
                ~self.kinds.mask_words(ctx.exclude_categories) if ctx.exclude_categories else None,
            ),
            ("include_kinds", self.kinds.mask_any(ctx.include_kinds) if ctx.include_kinds else None),
            ("exclude_kinds", ~self.kinds.mask_any(ctx.exclude_kinds) if ctx.exclude_kinds else None),
            (
                self.plan.filter_name,
                self.plan.domain_filter(self.stats, q, ctx) if self.plan.domain_filter else None,
            ),
            ("exclude_visited", self._consumed(ctx, uh)),
            ("exclude_items", self._excluded(ctx)),
        ]
        before = int(ok.sum())
        for name, mask in steps:
            if mask is None:
                continue
            ok &= mask
            if before and not ok.any():
                return ok, {"filter": name, "allowed_before": before}
        return ok, None

    def _consumed(self, ctx: RequestContext, uh: UserHistory) -> np.ndarray | None:
        exclude = (not self.plan.shows_consumed) if ctx.exclude_visited is None else ctx.exclude_visited
        if not exclude or not uh.n:
            return None
        mask = np.ones(self.stats.n, dtype=bool)
        mask[uh.idx[uh.idx >= 0]] = False
        return mask

    def _excluded(self, ctx: RequestContext) -> np.ndarray | None:
        if not ctx.exclude_items:
            return None
        mask = np.ones(self.stats.n, dtype=bool)
        idx = self.stats.index_of(np.array(ctx.exclude_items, dtype=object))
        mask[idx[idx >= 0]] = False
        return mask

    def recommend(self, ask: Ask) -> RankedList:
        """Top ``ask.k`` for one person at ``ask.ctx.time``. The history must hold only events
        before that time (the caller's job; nothing later may reach the features). An empty
        history is a cold start: request context + popularity + time-of-day profiles.

        When the wished kinds hold fewer than ``k`` items, the list is filled after them: first
        from the related kinds the request names, then from a wider domain filter (a longer
        distance); ``filled`` says how, and an empty list stays empty only when nothing fits."""
        first = self._recommend_once(ask)
        first.wished = len(first.candidates)
        if len(first.candidates) >= ask.k:
            return first
        return self._fill(ask, first)

    def _fill(self, ask: Ask, first: RankedList) -> RankedList:
        ctx = ask.ctx
        steps: list[tuple[str, RequestContext, str, list[str]]] = []
        if ctx.include_kinds and ctx.related_kinds:
            related = [k for k in ctx.related_kinds if k not in ctx.include_kinds]
            wider_kinds = replace(ctx, include_kinds=(*ctx.include_kinds, *related), related_kinds=())
            steps.append(("related_kinds", wider_kinds, "", related))
        if self.plan.widen is not None and ctx.widen_if_thin:
            wider = steps[-1][1] if steps else ctx
            for _ in range(WIDEN_STEPS):  # further each time, until the list is full
                loosened = self.plan.widen(wider)
                if loosened is None:
                    break
                wider = loosened[0]
                steps.append(("wider", wider, loosened[1], []))
        have = {c.item_id for c in first.candidates}
        for step, step_ctx, words, kinds in steps:
            if len(first.candidates) >= ask.k:
                break
            more = self._recommend_once(replace(ask, ctx=step_ctx))
            added = [c for c in more.candidates if c.item_id not in have][: ask.k - len(first.candidates)]
            if not added:
                continue
            for c in added:
                c.sources = [*c.sources, f"fill:{step}"]
                have.add(c.item_id)
            first.candidates.extend(added)
            used = sorted({k for c in added for k in (c.kinds or (c.category,)) if k in kinds})
            first.filled.append({"step": step, "added": len(added), "kinds": used, "words": words})
        if first.candidates:
            first.emptied_by = None if first.filled else first.emptied_by
        return first

    def _recommend_once(self, ask: Ask) -> RankedList:
        t0 = time.perf_counter()
        uh = ask.history if ask.history is not None else UserHistory.from_frame(pd.DataFrame(), self.stats)
        q = self.query(ask, uh)
        allowed, emptied = self.allowed(ask, q, uh)
        extra_idx = {name: self._indices(ids) for name, ids in ask.extra_sources.items()}
        extra = np.concatenate(list(extra_idx.values())) if extra_idx else None
        cp = candidate_pool(self.stats, q, self.plan.features, self.sources, allowed, self.pool_size, extra)
        t1 = time.perf_counter()
        ranker = ask.ranker or self.ranker
        scores = ranker.score(cp.features) if len(cp.rows) else np.zeros(0)
        scores, order, shifted, displaced = self._apply_feedback(ask, cp, scores)
        t2 = time.perf_counter()
        sources = provenance(self.stats, q, self.sources, self.plan.features, cp.rows, cp.features, extra_idx)
        out = [
            self._candidate(ask, q, cp, int(pos), float(scores[pos]), sources, shifted.get(int(pos)))
            for pos in order
        ]
        return RankedList(
            candidates=out,
            ranker=ranker.name,
            pool_size=int(len(cp.rows)),
            timings={"features_ms": round((t1 - t0) * 1000, 2), "rank_ms": round((t2 - t1) * 1000, 2)},
            pool_sources={name: int(hit.sum()) for name, hit in sources.items()},
            places_scored=cp.scored,
            feedback=self._feedback_trace(ask, out, shifted, displaced),
            emptied_by=emptied,
            notes=[n for part in q.parts.values() for n in getattr(part, "notes", ())],
        )

    def _indices(self, ids: list[str]) -> np.ndarray:
        ix = self.stats.index_of(np.array(ids, dtype=object))
        return ix[ix >= 0]

    def _apply_feedback(
        self, ask: Ask, cp: CandidatePool, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[int, float], dict[str, str]]:
        """The scores after the person's feedback, the served order, the pool positions the
        feedback shifted, and the items it pushed out of the list (for the trace)."""
        fb = ask.feedback
        if fb is None or not len(cp.rows):
            return scores, np.argsort(-scores, kind="stable")[: ask.k], {}, {}
        ids = self.stats.item_ids[cp.rows].astype(str)
        cats = list(self.categories[cp.rows])
        adjusted, shifted = fb.adjust(list(ids), cats, scores)
        order = np.argsort(-adjusted, kind="stable")[: ask.k]
        displaced: dict[str, str] = {}
        if shifted:
            kept = set(order.tolist())
            for p in np.argsort(-scores, kind="stable")[: ask.k]:
                if int(p) not in kept and int(p) in shifted:
                    displaced[str(ids[p])] = fb.why(str(ids[p]), cats[int(p)], shifted[int(p)])
        return adjusted, order, shifted, displaced

    def _candidate(
        self,
        ask: Ask,
        q: Query,
        cp: CandidatePool,
        pos: int,
        score: float,
        sources: dict[str, np.ndarray],
        shift: float | None,
    ) -> Candidate:
        i = int(cp.rows[pos])
        item_id = str(self.stats.item_ids[i])
        cols = self.plan.features.columns
        feats = {name: round(float(cp.features[pos, j]), 4) for j, name in enumerate(cols)}
        feats.update(ask.extra_features.get(item_id, {}))
        if self.plan.annotate is not None:
            feats.update(self.plan.annotate(self.stats, q, i))
        if shift is not None:
            feats["feedback_shift"] = shift
        name = self.names[i]
        return Candidate(
            item_id=item_id,
            name=name if isinstance(name, str) else None,
            category=self.categories[i],
            kinds=self.kinds.per_item[i],
            attrs=self.plan.attrs(self.stats, i, self._attrs[i]),
            sources=[n for n, hit in sources.items() if hit[pos]] or ["ranked"],
            features=feats,
            score=round(score, 6),
        )

    def _feedback_trace(
        self, ask: Ask, out: list[Candidate], shifted: dict[int, float], displaced: dict[str, str]
    ) -> dict[str, Any]:
        fb = ask.feedback
        if fb is None:
            return {}
        shown = {
            c.item_id: fb.why(c.item_id, c.category, c.features["feedback_shift"])
            for c in out
            if "feedback_shift" in c.features
        }
        return {"shifted_in_pool": len(shifted), "shown": shown, "displaced": displaced}
