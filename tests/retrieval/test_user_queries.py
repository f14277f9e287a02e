"""The user-query artefact: reused only where made from the same text, refused when corrupt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core import columns as C
from retrieval import user_queries
from retrieval.embedder import HashEmbedder


def test_round_trip_reuses_only_unchanged_texts(tmp_path: Path) -> None:
    emb = HashEmbedder()
    first = user_queries.encode_queries(emb, {"a": "likes coffee", "b": "goes to the gym"})
    user_queries.save(tmp_path, first, emb.name)
    known = user_queries.load(tmp_path, emb.name)
    assert set(known) == {"a", "b"} and known["a"][0] == "likes coffee"
    np.testing.assert_allclose(known["a"][1], first["a"][1])

    class Counting(HashEmbedder):
        texts: list[str] = []

        def encode(self, texts, batch_size=64, progress=None):  # type: ignore[no-untyped-def,override]
            Counting.texts += list(texts)
            return super().encode(texts, batch_size, progress)

    again = user_queries.encode_queries(Counting(), {"a": "likes coffee", "b": "now likes tea"}, known)
    assert Counting.texts == ["now likes tea"]  # "a" was reused, "b" changed and was encoded
    assert again["b"][0] == "now likes tea"


def test_a_corrupt_or_foreign_file_is_refused(tmp_path: Path) -> None:
    emb = HashEmbedder()
    user_queries.save(tmp_path, user_queries.encode_queries(emb, {"a": "x"}), emb.name)
    assert user_queries.load(tmp_path, "another-model") == {}
    (tmp_path / user_queries.FILE).write_bytes(b"not a zip at all")
    assert user_queries.load(tmp_path, emb.name) == {}
    assert user_queries.load(tmp_path / "missing", emb.name) == {}


def test_query_texts_skip_users_with_nothing_to_say() -> None:
    hist = pd.DataFrame(
        {C.ITEM: ["p1", "p2"], C.ITEM_NAME: ["Blue Bottle", None], C.CATEGORY: ["Coffee Shop", "Gym"]}
    )
    q = user_queries.query_texts(
        {"a": hist}, {"a": "Mornings at cafes.", "c": "Evenings out."}, ["a", "b", "c"]
    )
    assert set(q) == {"a", "c"} and q["a"].startswith("Mornings at cafes. Recently:") and "Gym" in q["a"]
    assert q["c"] == "Evenings out."
