"""Each user's embedding query, encoded ahead of requests: an artefact beside the FAISS index.

The FAISS source searches with the user's profile text plus their last three places
(``serving_state.embedding_query``); encoding that with MiniLM was most of a request's time.
`chronotope index` encodes every user's query and saves ``user_queries.npz`` (users, the query
texts, vectors, model); a server loads it and re-encodes only users whose query text changed
since, so the file is never trusted beyond the text it was made from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from retrieval.embedder import Embedder
from retrieval.serving_state import EMPTY_EVENTS, embedding_query

log = logging.getLogger(__name__)
FILE = "user_queries.npz"
QueryVectors = dict[str, tuple[str, np.ndarray]]


def query_texts(
    histories: Mapping[str, pd.DataFrame], profile_texts: Mapping[str, str], users: Iterable[str]
) -> dict[str, str]:
    """Each user's query without request text (users with neither profile nor history: none)."""
    out = {}
    for u in users:
        q = embedding_query(profile_texts.get(u), histories.get(u, EMPTY_EVENTS), None)
        if q:
            out[u] = q
    return out


def reusable(queries: Mapping[str, str], known: Mapping[str, tuple[str, np.ndarray]] | None) -> QueryVectors:
    """The ``known`` vectors made from the very same text as ``queries`` (nothing to encode)."""
    known = known or {}
    return {u: known[u] for u, q in queries.items() if u in known and known[u][0] == q}


def encode_queries(
    embedder: Embedder,
    queries: Mapping[str, str],
    known: Mapping[str, tuple[str, np.ndarray]] | None = None,
    *,
    batch_size: int = 128,
    progress: Callable[[int], None] | None = None,
) -> QueryVectors:
    """Vectors for ``queries``, reusing ``known`` ones made from the very same text."""
    out = reusable(queries, known)
    todo = [u for u in queries if u not in out]
    if todo:
        vecs = embedder.encode([queries[u] for u in todo], batch_size=batch_size, progress=progress)
        out.update({u: (queries[u], vecs[i]) for i, u in enumerate(todo)})
    return out


def save(index_dir: Path, vectors: Mapping[str, tuple[str, np.ndarray]], model: str) -> Path:
    """Written to a temporary name and renamed: a reader never sees half a file."""
    index_dir.mkdir(parents=True, exist_ok=True)
    users = sorted(vectors)
    dim = len(next(iter(vectors.values()))[1]) if vectors else 0
    tmp = index_dir / (FILE + ".tmp.npz")
    np.savez(
        tmp,
        users=np.array(users, dtype=str),
        texts=np.array([vectors[u][0] for u in users], dtype=str),
        vectors=np.stack([vectors[u][1] for u in users]).astype(np.float32) if users else np.zeros((0, dim)),
        model=np.array(model),
    )
    path = index_dir / FILE
    tmp.replace(path)
    return path


def load(index_dir: Path, model: str) -> QueryVectors:
    """The saved vectors, or none when the file is missing, unreadable or from another model."""
    path = index_dir / FILE
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["model"]) != model:
                log.warning("%s was made with %s, not %s: re-encoding", path, z["model"], model)
                return {}
            users, texts, vecs = z["users"], z["texts"], z["vectors"]
            if not (len(users) == len(texts) == len(vecs)):
                raise ValueError("users, texts and vectors differ in length")
            return {str(u): (str(t), vecs[i]) for i, (u, t) in enumerate(zip(users, texts, strict=True))}
    except Exception as exc:  # a corrupt artefact costs encoding time, never a failed start
        log.warning("ignoring %s (%s): user queries are encoded again", path, exc)
        return {}
