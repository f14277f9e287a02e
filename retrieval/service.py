"""The retrieval service the agent and API use: store-backed, built once at start-up.

Holds the in-memory Recommender (catalog statistics + ranker), the FAISS index with its embedder
(when an index was built), and each user's recent history. Per request: an embedding query from the
profile text, recent items and the request's free text; then candidates, filters and ranking.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.errors import NotReadyError
from core.events_frame import events_frame
from core.settings import Settings
from mining import UserProfile
from retrieval.catalog import load_catalog
from retrieval.embedder import Embedder, shared_embedder
from retrieval.grounding import CategoryGrounder
from retrieval.index import VectorIndex
from retrieval.item_text import item_text
from retrieval.recommender import Recommender
from retrieval.types import RankedList, RequestContext

log = logging.getLogger(__name__)
EMBED_TOP = 50


def behaviour(events: pd.DataFrame) -> pd.DataFrame:
    """What the user did, without feedback on recommendations: a rejected place is not a visit."""
    if C.KIND not in events or not len(events):
        return events
    return events[events[C.KIND] != "feedback"].reset_index(drop=True)


class Retriever:
    def __init__(
        self,
        recommender: Recommender,
        histories: dict[str, pd.DataFrame],
        catalog: pd.DataFrame,
        index: VectorIndex | None = None,
        embedder: Embedder | None = None,
        pool_size: int = 300,
        index_error: str | None = None,
        grounder: CategoryGrounder | None = None,
    ) -> None:
        self.recommender = recommender
        self.histories = histories
        self.catalog = catalog.set_index("item_id", drop=False)
        self.index = index
        self.embedder = embedder
        self.pool_size = pool_size
        self.index_error = index_error
        self.grounder = grounder  # the catalog's categories, embedded: grounds chat wishes
        self._lock = threading.Lock()
        self._empty = pd.DataFrame(columns=C.EVENT_COLUMNS)

    @classmethod
    def load(
        cls,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        embedder: Embedder | None = None,
        load_index: bool = True,
        grounding: bool = True,
    ) -> Retriever:
        """``grounding``: embed the catalog's category names for the chat (loads the embedding
        model even where no item index was built)."""
        t0 = time.perf_counter()
        with session_factory() as s:
            events = behaviour(events_frame(s))
            catalog = load_catalog(s)
        rec = Recommender.fit(
            events, catalog, ranker=settings.retrieval.ranker, models_dir=settings.models_dir
        )
        histories = {str(u): g.reset_index(drop=True) for u, g in events.groupby(C.USER, sort=False)}
        index, error = None, None
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
            cats = catalog["category"].dropna().astype(str).unique().tolist() if len(catalog) else []
            grounder = CategoryGrounder(cats, embedder or shared_embedder(settings.retrieval.embedding_model))
        log.info(
            "retriever ready in %.1f s (%d items, %d users)",
            time.perf_counter() - t0,
            len(catalog),
            len(histories),
        )
        return cls(rec, histories, catalog, index, embedder, settings.retrieval.pool_size, error, grounder)

    def refresh_user(self, session: Session, user_id: str) -> None:
        """Reload one user's history after new events (cheap: one indexed query)."""
        df = behaviour(events_frame(session, [user_id]))
        with self._lock:
            if len(df):
                self.histories[user_id] = df
            else:
                self.histories.pop(user_id, None)

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self.histories.pop(user_id, None)

    def history(self, user_id: str) -> pd.DataFrame:
        return self.histories.get(user_id, self._empty)

    def utc_offset_min(self, user_id: str) -> int:
        hist = self.history(user_id)
        return int(hist[C.TZ_OFFSET].iloc[-1]) if len(hist) and C.TZ_OFFSET in hist else 0

    def kind_of(self, item_id: str) -> str | None:
        """A place's category (or name), for naming it to a person; None when the catalog has neither."""
        if item_id not in self.catalog.index:
            return None
        row = self.catalog.loc[item_id]
        for col in ("category", "name"):
            v = row.get(col) if hasattr(row, "get") else None
            if isinstance(v, str) and v.strip():
                return v
        return None

    def last_stop(self, user_id: str, before: Any) -> str | None:
        """The place of the user's latest event before ``before`` (a tz-aware time)."""
        hist = self.history(user_id)
        if not len(hist) or C.TIME not in hist:
            return None
        earlier = hist[hist[C.TIME] < pd.Timestamp(before)]
        if C.ITEM not in earlier:
            return None
        items = earlier[C.ITEM].dropna()
        return str(items.iloc[-1]) if len(items) else None

    def catalog_kinds(self) -> tuple[str, ...]:
        if self.grounder is not None:
            return tuple(self.grounder.categories)
        cats = self.catalog["category"].dropna() if "category" in self.catalog else []
        return tuple(sorted({c for c in cats if isinstance(c, str)}))

    def _embedding_query(self, hist: pd.DataFrame, ctx: RequestContext, profile: UserProfile | None) -> str:
        parts = []
        if profile is not None and profile.text:
            parts.append(profile.text)
        if len(hist):
            recent = hist.tail(3)
            parts.append(
                "Recently: "
                + "; ".join(
                    item_text(str(r[C.ITEM]), r[C.ITEM_NAME], r[C.CATEGORY], None, None)
                    for _, r in recent.iterrows()
                )
            )
        if ctx.text:
            parts.append(ctx.text)
        return " ".join(parts)

    def recommend(
        self,
        session: Session | None,
        user_id: str,
        ctx: RequestContext,
        k: int = 10,
        profile: UserProfile | None = None,
    ) -> RankedList:
        """Ranked candidates for ``user_id`` (an unknown user is a cold start, not an error)."""
        hist = self.history(user_id)
        extra_sources: dict[str, list[str]] = {}
        extra_features: dict[str, dict[str, float]] = {}
        t0 = time.perf_counter()
        if self.index is not None and self.embedder is not None:
            query = self._embedding_query(hist, ctx, profile)
            if query:
                hits = self.index.search(self.embedder.encode([query]), EMBED_TOP)[0]
                extra_sources["embedding"] = [i for i, _ in hits]
                extra_features = {i: {"emb_sim": round(s, 4)} for i, s in hits}
        t_embed = (time.perf_counter() - t0) * 1000
        out = self.recommender.recommend(
            user_id,
            hist,
            ctx,
            k,
            pool_size=self.pool_size,
            extra_sources=extra_sources,
            extra_features=extra_features,
        )
        out.timings["embed_ms"] = round(t_embed, 2)
        return out

    def status(self) -> dict[str, Any]:
        return {
            "items": int(len(self.catalog)),
            "users": len(self.histories),
            "ranker": self.recommender.ranker.name,
            "index": {"kind": self.index.kind, "size": len(self.index), "model": self.index.model}
            if self.index
            else None,
            "index_error": self.index_error,
        }
