"""The store-backed Retriever: real SQLite, real FAISS, the real packaged embedding model."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.settings import Settings
from domains.places import PLACES as _PLACES
from retrieval.catalog import catalog_texts, load_catalog
from retrieval.embedder import HashEmbedder, SentenceTransformerEmbedder
from retrieval.index import VectorIndex
from retrieval.service import Retriever
from tests.retrieval.conftest import ask_retriever, place_ctx, store_events

PLACES_PLAN = _PLACES.retrieval_plan()

T = datetime(2012, 6, 4, 16, 0, tzinfo=UTC)


def _store(factory: sessionmaker[Session], ev: pd.DataFrame, items: pd.DataFrame) -> None:
    store_events(factory, ev)
    with factory() as s:  # give items their names/categories
        from core.models import Item

        for r in items.itertuples():
            it = s.get(Item, r.item_id)
            if it is not None:
                it.name, it.category = r.name, r.category
        s.commit()


def _index(settings: Settings, factory: sessionmaker[Session], embedder: object) -> None:
    with factory() as s:
        cat = load_catalog(s)
    vecs = embedder.encode(catalog_texts(cat))  # type: ignore[attr-defined]
    VectorIndex.build(cat["item_id"].tolist(), vecs, model=embedder.name).save(settings.index_dir)  # type: ignore[attr-defined]


def test_without_index_degrades_to_other_sources(
    settings: Settings,
    sqlite_session_factory: sessionmaker[Session],
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    ev, items = small_world
    _store(sqlite_session_factory, ev, items)
    r = Retriever.load(settings, sqlite_session_factory, PLACES_PLAN, embedder=HashEmbedder())
    assert r.status()["index"] is None and "chronotope index" in r.status()["index_error"]
    out = ask_retriever(r, "u3", place_ctx(time=T), k=5)
    assert len(out.candidates) == 5 and "embedding" not in {s for c in out.candidates for s in c.sources}
    assert ask_retriever(r, "stranger", place_ctx(time=T), k=5).candidates  # cold start


def test_refresh_user_sees_new_events(
    settings: Settings,
    sqlite_session_factory: sessionmaker[Session],
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    ev, items = small_world
    _store(sqlite_session_factory, ev[ev[C.USER] != "u5"], items)
    r = Retriever.load(settings, sqlite_session_factory, PLACES_PLAN, load_index=False)
    assert r.history("u5").empty
    _store(sqlite_session_factory, ev[ev[C.USER] == "u5"], items)
    with sqlite_session_factory() as s:
        r.refresh_user(s, "u5")
    assert len(r.history("u5")) == int((ev[C.USER] == "u5").sum())
    top = ask_retriever(r, "u5", place_ctx(time=T), k=3).candidates[0]
    assert "repeat" in top.sources


@pytest.mark.slow
def test_embedding_source_with_the_packaged_model(
    settings: Settings,
    sqlite_session_factory: sessionmaker[Session],
    small_world: tuple[pd.DataFrame, pd.DataFrame],
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    ev, items = small_world
    _store(sqlite_session_factory, ev, items)
    _index(settings, sqlite_session_factory, real_embedder)
    r = Retriever.load(settings, sqlite_session_factory, PLACES_PLAN, embedder=real_embedder)
    assert r.status()["index"]["size"] == 60 and r.status()["index"]["model"] == "all-MiniLM-L6-v2"
    out = ask_retriever(r, "stranger", place_ctx(time=T, text="an art museum with paintings"), k=60)
    emb = [c for c in out.candidates if "embedding" in c.sources]
    assert emb, "the embedding source found nothing"
    best = max(emb, key=lambda c: c.features["emb_sim"])
    assert best.category == "Museum"  # the real model puts "art museum" next to museums
    # filters apply to embedding candidates too
    out = ask_retriever(r, "stranger", place_ctx(time=T, text="museum", exclude_categories=("museum",)), k=60)
    assert all(c.category != "Museum" for c in out.candidates)


@pytest.mark.slow
def test_real_embedder_semantics(real_embedder: SentenceTransformerEmbedder) -> None:
    v = real_embedder.encode(["espresso bar", "coffee shop", "football stadium"])
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])


def test_a_worker_may_serve_before_the_users_queries_are_encoded(
    settings: Settings,
    sqlite_session_factory: sessionmaker[Session],
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """encode_queries_at_start=False (the demo): the state starts without the users' embedding
    queries, requests still use the embedding source (encoding their own), and a background
    fill adds them all, keeping a vector written meanwhile."""
    ev, items = small_world
    _store(sqlite_session_factory, ev, items)
    embedder = HashEmbedder()
    _index(settings, sqlite_session_factory, embedder)
    lazy = settings.model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"encode_queries_at_start": False})}
    )
    r = Retriever.load(lazy, sqlite_session_factory, PLACES_PLAN, embedder=embedder)
    assert r.index is not None and r.state.query_vectors == {}
    out = ask_retriever(r, "u3", place_ctx(time=T), k=5)
    assert out.candidates
    eager = Retriever.load(settings, sqlite_session_factory, PLACES_PLAN, embedder=embedder)
    assert len(eager.state.query_vectors) == len(eager.state.histories)
    added = r.fill_query_vectors(sqlite_session_factory)
    assert added == len(eager.state.query_vectors)
    assert {u: v[0] for u, v in r.state.query_vectors.items()} == {
        u: v[0] for u, v in eager.state.query_vectors.items()
    }
    assert r.fill_query_vectors(sqlite_session_factory) == 0  # nothing left to fill
