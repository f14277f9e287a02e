"""The retrieval service the agent and API use: store-backed, built once at start-up.

Holds the serving state (catalog statistics, ranker, every user's history; retrieval.serving_state),
the FAISS index with its embedder (when an index was built) and the kind grounder, all built with
the domain's ``RetrievalPlan``. Per request: what the person's history says (``person``, read from
one state), an embedding query from the profile text, recent items and the request's free text;
then candidates, filters and ranking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.errors import NotReadyError
from core.events_frame import events_frame
from core.settings import Settings
from core.state_changes import latest_seq
from mining import UserProfile
from retrieval import user_queries
from retrieval.behaviour_source import behaviour_status, saved_behaviour
from retrieval.catalog import load_catalog
from retrieval.catalog_stats import CatalogStats
from retrieval.embedder import Embedder, shared_embedder
from retrieval.feedback import FeedbackSignals
from retrieval.grounding import CategoryGrounder
from retrieval.index import VectorIndex
from retrieval.plan import RetrievalPlan
from retrieval.profile_store import latest_profile_texts
from retrieval.rankers import LearnedRanker, Ranker, load_ranker
from retrieval.recommender import Ask, Recommender
from retrieval.serving_state import EMPTY_EVENTS, ServingState, behaviour, embedding_query, frames_by_user
from retrieval.sources import EMBEDDING
from retrieval.types import RankedList, RequestContext
from retrieval.user_history import UserHistory

log = logging.getLogger(__name__)
EMBED_TOP = 50


@dataclass(frozen=True)
class PersonView:
    """What one request needs from a person's history, read from one serving state: their events
    (frame and catalog indices), their offset from UTC (their latest event's) and their latest item
    before the request's time."""

    user_id: str
    history: pd.DataFrame
    user_history: UserHistory | None
    utc_offset_min: int
    last_item: str | None

    @property
    def known(self) -> bool:
        return len(self.history) > 0


class Retriever:
    """Reads a ``ServingState`` (swapped whole on new events, never patched) plus the FAISS index,
    its embedder and the kind grounder, which do not change while serving."""

    def __init__(
        self,
        state: ServingState,
        index: VectorIndex | None = None,
        embedder: Embedder | None = None,
        index_error: str | None = None,
        grounder: CategoryGrounder | None = None,
    ) -> None:
        self.state = state
        self.index = index
        self.embedder = embedder
        self.index_error = index_error
        self.grounder = grounder  # the catalog's kinds, embedded: grounds chat wishes
        self._write_lock = threading.Lock()  # writers build the next state one at a time
        self.models_dir: Path | None = None  # where other rankers than the loaded one are found
        self._rankers: dict[str, Ranker] = {}

    @classmethod
    def load(
        cls,
        settings: Settings,
        session_factory: sessionmaker[Session],
        plan: RetrievalPlan,
        *,
        embedder: Embedder | None = None,
        load_index: bool = True,
        grounding: bool = True,
    ) -> Retriever:
        """``grounding``: embed the catalog's kind names for the chat (loads the embedding model
        even where no item index was built)."""
        t0 = time.perf_counter()
        with session_factory() as s:
            # The version first: a change committed while the rest loads is applied again by the
            # follower, which is harmless (events already in a history are not counted twice).
            version = latest_seq(s)
            events = behaviour(events_frame(s))
            catalog = load_catalog(s)
        rs = settings.retrieval
        rec = Recommender.fit(events, catalog, plan, ranker=rs.ranker, models_dir=settings.models_dir)
        rec.sources = plan.source_plan(rs.sources, rs.source_depth)
        rec.pool_size = rs.pool_size
        index, error = None, None
        if load_index and not settings.retrieval.embedding_source:
            load_index, error = False, "embedding source off (CHRONOTOPE_RETRIEVAL__EMBEDDING_SOURCE=false)"
        if load_index:
            try:
                index = VectorIndex.load(settings.index_dir)
                if embedder is None:
                    embedder = shared_embedder(settings.retrieval.embedding_model)
                if embedder.dim != index.dim:
                    raise NotReadyError(f"embedder dimension {embedder.dim} != index dimension {index.dim}")
            except NotReadyError as exc:
                index, error = None, exc.message
                log.warning("embedding source off: %s", error)
        grounder = None
        if grounding:
            kinds = sorted({k for ks in catalog["kinds"] for k in ks}) if len(catalog) else []
            grounder = CategoryGrounder(
                kinds, embedder or shared_embedder(settings.retrieval.embedding_model)
            )
        out = cls(ServingState.build(events, catalog, rec, version), index, embedder, error, grounder)
        out.models_dir = settings.models_dir
        known = user_queries.load(settings.index_dir, embedder.name) if index is not None and embedder else {}
        with session_factory() as s:
            out.state = out.with_query_vectors(
                s, out.state, known=known, encode=settings.retrieval.encode_queries_at_start
            )
        log.info(
            "retriever ready in %.1f s (%d items, %d users, state version %d)",
            time.perf_counter() - t0,
            len(catalog),
            len(out.state.histories),
            version,
        )
        return out

    # What a request reads, always from one state (read ``self.state`` once per request).
    @property
    def recommender(self) -> Recommender:
        return self.state.recommender

    @property
    def histories(self) -> Mapping[str, pd.DataFrame]:
        return self.state.histories

    @property
    def catalog(self) -> pd.DataFrame:
        return self.state.catalog

    @property
    def version(self) -> int:
        return self.state.version

    def history(self, user_id: str) -> pd.DataFrame:
        return self.state.history(user_id)

    # Writers: each builds the next state from the current one and swaps it in.
    def refresh_users(self, session: Session, user_ids: Iterable[str], version: int | None = None) -> None:
        """Serve these users' stored histories (new events fold into the shared statistics; a
        user without events any more is dropped). ``version``: the state change this reflects."""
        users = sorted({str(u) for u in user_ids})
        df = behaviour(events_frame(session, users)) if users else EMPTY_EVENTS
        got = frames_by_user(df) if len(df) else {}
        frames = {u: got.get(u, EMPTY_EVENTS) for u in users}
        with self._write_lock:
            st = self.state
            st = st.with_users(frames, st.version if version is None else max(version, st.version))
            self.state = self.with_query_vectors(session, st, users)

    def refresh_user(self, session: Session, user_id: str) -> None:
        self.refresh_users(session, [user_id])

    def forget_user(self, user_id: str) -> None:
        with self._write_lock:
            self.state = self.state.with_users({user_id: EMPTY_EVENTS}, self.state.version)

    def reload(self, session_factory: sessionmaker[Session]) -> None:
        """Rebuild the whole state from the store (after a bulk load), keeping the loaded ranker."""
        with session_factory() as s:
            version = latest_seq(s)
            events = behaviour(events_frame(s))
            catalog = load_catalog(s)
        old = self.recommender
        stats = CatalogStats.build(events, catalog)
        # the newest saved behaviour model (a rebuild is when a retrained one is picked up)
        saved = saved_behaviour(old.plan.features, self.models_dir) if self.models_dir else None
        old.plan.features.build_parts(stats, events, catalog, saved)
        rec = Recommender(stats, old.ranker, catalog, old.plan, old.sources, old.pool_size)
        with self._write_lock, session_factory() as s:
            self.state = self.with_query_vectors(s, ServingState.build(events, catalog, rec, version))

    def set_history(self, user_id: str, frame: pd.DataFrame) -> None:
        """Serve ``user_id`` from ``frame`` without touching the statistics (evaluation)."""
        with self._write_lock:
            self.state = self.state.with_history(user_id, frame)

    def person(self, user_id: str, before: Any) -> PersonView:
        """The person's history, UTC offset and latest item before ``before`` (tz-aware), from one
        state: what a request reads about them, once."""
        st = self.state
        hist = st.history(user_id)
        uh = st.user_histories.get(user_id)
        offset = int(hist[C.TZ_OFFSET].iloc[-1]) if len(hist) and C.TZ_OFFSET in hist else 0
        last = None
        if uh is not None and uh.n:
            t = pd.Timestamp(before).tz_convert("UTC").value / 3.6e12
            earlier = uh.idx[: int(np.searchsorted(uh.t_h, t, side="left"))]
            known = earlier[earlier >= 0]
            last = str(st.recommender.stats.item_ids[known[-1]]) if len(known) else None
        return PersonView(user_id, hist, uh, offset, last)

    def kind_of(self, item_id: str) -> str | None:
        """An item's kind (or name), for naming it to a person; None when the catalog has neither."""
        return self.state.item_names().kind.get(item_id)

    def name_of(self, item_id: str) -> str | None:
        """An item's own name (a film's title), else its kind."""
        names = self.state.item_names()
        return names.name.get(item_id) or names.kind.get(item_id)

    def catalog_kinds(self) -> tuple[str, ...]:
        if self.grounder is not None:
            return tuple(self.grounder.categories)
        kinds = self.catalog["kinds"] if "kinds" in self.catalog else []
        return tuple(sorted({k for ks in kinds for k in ks}))

    def with_query_vectors(
        self,
        session: Session,
        st: ServingState,
        user_ids: Iterable[str] | None = None,
        known: Mapping[str, tuple[str, np.ndarray]] | None = None,
        encode: bool = True,
    ) -> ServingState:
        """``st`` with the embedding-query vectors of ``user_ids`` (all users when None), from
        their latest profile text and recent places; ``known`` vectors (the `chronotope index`
        artefact) are reused where made from the same text; ``encode=False``: only those (the rest
        are left to ``fill_query_vectors``). Off the request path."""
        if self.index is None or self.embedder is None:
            return st
        users = list(st.histories) if user_ids is None else sorted(set(user_ids))
        texts = latest_profile_texts(session, None if user_ids is None else users)
        queries = user_queries.query_texts(st.histories, texts, users)
        t0 = time.perf_counter()
        pool = {**st.query_vectors, **(known or {})}
        if encode:
            fresh = user_queries.encode_queries(self.embedder, queries, pool)
        else:
            fresh = user_queries.reusable(queries, pool)
        vectors = dict(st.query_vectors) if user_ids is not None else {}
        for u in users:
            vectors.pop(u, None)
        vectors.update(fresh)
        if len(queries) > 50:
            log.info("%d users' embedding queries ready in %.1f s", len(queries), time.perf_counter() - t0)
        return replace(st, query_vectors=vectors)

    def fill_query_vectors(self, session_factory: sessionmaker[Session]) -> int:
        """Encode the embedding queries the state lacks (a worker that started without them) and
        add them; a vector a writer added meanwhile is kept. Returns how many were added."""
        if self.index is None or self.embedder is None:
            return 0
        st = self.state
        with session_factory() as s:
            texts = latest_profile_texts(s, None)
        queries = user_queries.query_texts(st.histories, texts, list(st.histories))
        have = user_queries.reusable(queries, st.query_vectors)
        missing = {u: q for u, q in queries.items() if u not in have}
        fresh = user_queries.encode_queries(self.embedder, missing)
        with self._write_lock:
            cur = self.state
            self.state = replace(cur, query_vectors={**fresh, **cur.query_vectors})
        log.info("filled in %d users' embedding queries", len(fresh))
        return len(fresh)

    def ranker_named(self, name: str) -> Ranker:
        """'learned' or 'heuristic' for an experiment's arm: the loaded ranker when it is of that
        kind, else loaded once here (learned without a model file is the heuristic, as at start)."""
        current = self.recommender.ranker
        if (name == "learned") == isinstance(current, LearnedRanker):
            return current
        if name not in self._rankers:
            self._rankers[name] = load_ranker(name, self.models_dir, self.recommender.plan.features)
        return self._rankers[name]

    def recommend(
        self,
        person: PersonView,
        ctx: RequestContext,
        k: int = 10,
        profile: UserProfile | None = None,
        *,
        ranker: str | None = None,
        feedback: FeedbackSignals | None = None,
    ) -> RankedList:
        """Ranked candidates for the person (one without a history is a cold start, not an error).
        ``ranker``: 'learned' or 'heuristic' instead of the loaded one; ``feedback``: the person's
        reactions shift the scores (retrieval.feedback)."""
        st = self.state
        t0 = time.perf_counter()
        ask = Ask(
            ctx,
            k,
            person.user_history,
            person.utc_offset_min,
            ranker=self.ranker_named(ranker) if ranker else None,
            feedback=feedback,
        )
        if self.index is not None and self.embedder is not None:
            query = embedding_query(profile.text if profile else None, person.history, ctx.text)
            if query:
                known = st.query_vectors.get(person.user_id)
                vec = known[1][None, :] if known and known[0] == query else self.embedder.encode([query])
                hits = self.index.search(vec, EMBED_TOP)[0]
                ask.extra_sources[EMBEDDING] = [i for i, _ in hits]
                ask.extra_features = {i: {"emb_sim": round(s, 4)} for i, s in hits}
        t_embed = (time.perf_counter() - t0) * 1000
        out = st.recommender.recommend(ask)
        out.timings["embed_ms"] = round(t_embed, 2)
        return out

    def status(self) -> dict[str, Any]:
        st = self.state
        return {
            "items": int(len(st.catalog)),
            "users": len(st.histories),
            "state_version": st.version,
            "ranker": st.recommender.ranker.name,
            "domain": st.recommender.plan.domain,
            "sources": st.recommender.sources.names + ([EMBEDDING] if self.index is not None else []),
            "ranker_refused": list(st.recommender.ranker_refused),
            **behaviour_status(st.recommender.stats),
            "index": {"kind": self.index.kind, "size": len(self.index), "model": self.index.model}
            if self.index
            else None,
            "index_error": self.index_error,
        }
