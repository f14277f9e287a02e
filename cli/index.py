"""``chronotope index``: embed the catalog and build or extend the FAISS index."""

from __future__ import annotations

import time
from typing import Any

import typer

from cli.common import console, handle_errors, progress, settings


@handle_errors
def index_cmd(
    kind: str = typer.Option("", "--kind", help="auto | flat | hnsw | ivf (default: the setting, auto)."),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Embed everything again instead of adding new items."
    ),
    batch_size: int = typer.Option(128, "--batch-size", help="Texts per encoding batch."),
    users: bool = typer.Option(
        True,
        "--users/--no-users",
        help="Also store every user's embedding query (else a server fills them in).",
    ),
    behaviour: bool = typer.Option(
        True,
        "--behaviour/--no-behaviour",
        help="Also train the behaviour model (the sequence encoder and item vectors behind the "
        "'behaviour' candidate source) on the stored events; servers load it on start or rebuild.",
    ),
) -> None:
    """Embed items (name, kinds, attributes, and what the domain adds: a place's whereabouts) and
    index them; new items are added."""
    from core.db import open_store
    from core.errors import NotReadyError
    from domains import resolve
    from retrieval.catalog import load_catalog
    from retrieval.embedder import SentenceTransformerEmbedder
    from retrieval.index import VectorIndex

    s = settings()
    _, factory = open_store(s)
    with factory() as sess:
        catalog = load_catalog(sess)
        domain = resolve(s.domain, sess)
    if catalog.empty:
        console.print("the catalog is empty: ingest data first (`chronotope ingest`)")
        return
    if behaviour:
        train_behaviour(s, factory, domain, catalog)
    existing = None
    if not rebuild:
        try:
            existing = VectorIndex.load(s.index_dir)
        except NotReadyError:
            existing = None
    ids = catalog["item_id"].astype(str).tolist()
    todo = [i for i, item in enumerate(ids) if existing is None or item not in existing.pos]
    embedder = SentenceTransformerEmbedder(s.retrieval.embedding_model)
    if not todo:
        console.print(f"index up to date: {len(existing or [])} items ({existing.kind if existing else '-'})")
    else:
        _index_items(
            s, catalog, ids, todo, existing, embedder, kind, batch_size, domain.retrieval_plan().item_text
        )
    if users:
        _encode_user_queries(s, factory, embedder, batch_size)


def _index_items(
    s: Any,
    catalog: Any,
    ids: list[str],
    todo: list[int],
    existing: Any,
    embedder: Any,
    kind: str,
    batch_size: int,
    item_text: Any,
) -> None:
    from retrieval.catalog import catalog_texts
    from retrieval.index import VectorIndex

    t0 = time.perf_counter()
    texts = catalog_texts(catalog.iloc[todo], item_text)
    t1 = time.perf_counter()
    with progress("embed items", len(texts)) as advance:
        vectors = embedder.encode(texts, batch_size=batch_size, progress=advance)
    t2 = time.perf_counter()
    todo_ids = [ids[i] for i in todo]
    if existing is None:
        index = VectorIndex.build(todo_ids, vectors, kind=kind or s.retrieval.index_kind, model=embedder.name)
        added = len(index)
    else:
        index = existing
        added = index.add(todo_ids, vectors)
    index.save(s.index_dir)
    console.print(
        f"indexed {added:,} items ({len(index):,} in total, {index.kind}) "
        f"in {time.perf_counter() - t0:.1f} s "
        f"({len(texts) / max(t2 - t1, 1e-9):.0f} items/s)"
    )


def _encode_user_queries(s: Any, factory: Any, embedder: Any, batch_size: int) -> None:
    """Every user's embedding query, so a request does not run MiniLM (retrieval/user_queries.py)."""
    from core.events_frame import events_frame
    from retrieval import user_queries
    from retrieval.profile_store import latest_profile_texts
    from retrieval.serving_state import behaviour, frames_by_user

    t0 = time.perf_counter()
    with factory() as sess:
        histories = frames_by_user(behaviour(events_frame(sess)))
        texts = latest_profile_texts(sess)
    queries = user_queries.query_texts(histories, texts, sorted(set(histories) | set(texts)))
    known = user_queries.load(s.index_dir, embedder.name)
    stale = sum(1 for u, q in queries.items() if known.get(u, ("",))[0] != q)
    with progress("embed user queries", stale) as advance:
        vectors = user_queries.encode_queries(
            embedder, queries, known, batch_size=batch_size, progress=advance
        )
    user_queries.save(s.index_dir, vectors, embedder.name)
    console.print(
        f"user queries: {len(vectors):,} ({stale:,} encoded, the rest unchanged) "
        f"in {time.perf_counter() - t0:.1f} s"
    )


def train_behaviour(s: Any, factory: Any, domain: Any, catalog: Any) -> None:
    """Train and save the behaviour model on the store's events (retrieval/behaviour_source.py)."""
    from core.events_frame import events_frame
    from retrieval.behaviour_source import train_for
    from retrieval.serving_state import behaviour

    with factory() as sess:
        events = behaviour(events_frame(sess))
    if events.empty:
        console.print("behaviour model: no events yet, nothing to learn from")
        return
    try:
        model, path = train_for(domain.feature_set(), events, catalog, s.models_dir, progress=console.print)
    except ValueError as exc:
        console.print(f"behaviour model not trained: {exc}")
        return
    m = model.meta
    console.print(
        f"behaviour model {model.version}: {m['examples']:,} steps to a new item, {m['items']:,} items, "
        f"held-out loss {m['held_out_loss']} (epoch {m['best_epoch']}), {m['train_s']} s -> {path}"
    )


def register(app: typer.Typer) -> None:
    app.command("index")(index_cmd)
