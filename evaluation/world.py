"""The world an interactive evaluation talks to: a fresh store with every user and item of the
dev split, the retriever over the history only, and the serving core as `chronotope serve`
assembles it (agent.assembly), the LLM as the settings say."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from agent.assembly import Services, build_services
from agent.chat.agent import ChatAgent
from agent.pipeline import RecommendPipeline
from core import columns as C
from core.db import open_store
from core.models import Item, User
from core.settings import Settings
from domains.base import Domain
from evaluation.dev_split import DevSplit
from mining import build_profile
from retrieval.embedder import limit_threads, shared_embedder
from retrieval.grounding import CategoryGrounder
from retrieval.index import VectorIndex
from retrieval.profile_store import save_profile
from retrieval.recommender import Recommender
from retrieval.service import Retriever
from retrieval.serving_state import EMPTY_EVENTS, ServingState, behaviour


@dataclass
class World:
    settings: Settings
    services: Services
    categories: dict[str, str | None]  # item id -> kind
    factory: Any

    @property
    def retriever(self) -> Retriever:
        return self.services.retriever

    @property
    def pipeline(self) -> RecommendPipeline:
        return self.services.pipeline

    @property
    def chat(self) -> ChatAgent:
        return self.services.chat

    def serve_history(self, user_id: str, frame: pd.DataFrame) -> None:
        """Serve ``user_id`` from ``frame`` (the input before their target), with a profile mined
        from it alone."""
        self.retriever.set_history(user_id, frame)
        with self.factory() as s:
            save_profile(s, build_profile(frame, user_id, plan=self.services.domain.mining_plan()))
            s.commit()


def catalog_frame(split: DevSplit) -> pd.DataFrame:
    rows = pd.concat([split.history, split.test], ignore_index=True)
    rows = rows.dropna(subset=[C.ITEM])
    rows = rows.assign(**{C.ITEM: rows[C.ITEM].astype(str)})
    g = rows.groupby(C.ITEM, sort=True)
    out = pd.DataFrame(
        {
            "item_id": g.size().index,
            "name": g[C.ITEM_NAME].first().to_numpy() if C.ITEM_NAME in rows else None,
            "category": g[C.CATEGORY].first().to_numpy(),
            "lat": g[C.LAT].median().to_numpy(),
            "lon": g[C.LON].median().to_numpy(),
            "attributes": None,
        }
    )
    out["kinds"] = [(c,) if isinstance(c, str) else () for c in out["category"]]
    return out


def build_world(
    split: DevSplit,
    settings: Settings,
    work_dir: Path,
    ranker: str,
    index_dir: Path | None,
    domain: Domain,
    say: Callable[[str], None] = lambda _m: None,
) -> World:
    """A fresh store in ``work_dir`` with every user and item, the retriever over the history
    only, and the chat agent as ``chronotope serve`` builds it."""
    if work_dir.exists():
        for name in ("chronotope.db", "chronotope.db-wal", "chronotope.db-shm"):
            (work_dir / name).unlink(missing_ok=True)
        shutil.rmtree(work_dir / "plots", ignore_errors=True)
    s = settings.model_copy(update={"data_dir": work_dir, "db_url": None})
    _, factory = open_store(s)
    catalog = catalog_frame(split)
    users = sorted(set(split.history[C.USER].astype(str)) | set(split.test[C.USER].astype(str)))
    with factory() as sess:
        sess.add_all(User(id=u) for u in users)
        sess.add_all(
            Item(
                id=r.item_id,
                name=r.name if isinstance(r.name, str) else None,
                category=r.category if isinstance(r.category, str) else None,
                lat=float(r.lat),
                lon=float(r.lon),
                attributes={},
            )
            for r in catalog.itertuples(index=False)
        )
        sess.commit()
    say(f"store ready: {len(users):,} users, {len(catalog):,} items")
    plan = domain.retrieval_plan()
    rec = Recommender.fit(behaviour(split.history), catalog, plan, ranker=ranker, models_dir=s.models_dir)
    rec.pool_size = s.retrieval.pool_size
    limit_threads(s.retrieval.serving_threads)  # as `chronotope serve` does
    embedder = shared_embedder(settings.retrieval.embedding_model)
    index = None
    if index_dir is not None and (index_dir / "items.faiss").exists():
        index = VectorIndex.load(index_dir)
    grounder = CategoryGrounder(catalog["category"].dropna().unique().tolist(), embedder)
    state = ServingState.build(EMPTY_EVENTS, catalog, rec, 0)
    retriever = Retriever(state, index, embedder if index else None, None, grounder)
    services = build_services(s, factory, retriever=retriever, domain=domain, traces=False)
    cats = dict(zip(catalog["item_id"], catalog["category"], strict=True))
    return World(s, services, cats, factory)
