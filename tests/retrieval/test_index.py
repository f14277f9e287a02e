"""FAISS index: build, search, save/load, add without rebuild, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidInputError, NotReadyError
from retrieval.index import VectorIndex, choose_kind


def _vecs(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_round_trip_and_add(tmp_path: Path, kind: str) -> None:
    x = _vecs(300)
    ids = [f"item-{i}" for i in range(300)]
    vi = VectorIndex.build(ids[:250], x[:250], kind=kind, model="m")
    assert vi.add(ids[200:], x[200:]) == 50  # overlapping ids are skipped, new ones added
    vi.save(tmp_path)
    again = VectorIndex.load(tmp_path)
    assert len(again) == 300 and again.kind == kind and again.model == "m"
    hits = again.search(x[[10, 280]], 5)
    assert hits[0][0][0] == "item-10" and hits[1][0][0] == "item-280"
    assert hits[0][0][1] == pytest.approx(1.0, abs=1e-4)


def test_hnsw_agrees_with_exact_on_small_sets() -> None:
    x = _vecs(2000, 32, seed=1)
    ids = [str(i) for i in range(2000)]
    exact = VectorIndex.build(ids, x, kind="flat")
    ann = VectorIndex.build(ids, x, kind="hnsw")
    q = _vecs(20, 32, seed=2)
    overlap = [
        len({i for i, _ in a} & {i for i, _ in b}) / 10
        for a, b in zip(exact.search(q, 10), ann.search(q, 10), strict=True)
    ]
    assert np.mean(overlap) >= 0.9


def test_empty_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(NotReadyError, match="chronotope index"):
        VectorIndex.load(tmp_path)
    vi = VectorIndex.build([], np.zeros((0, 8), dtype=np.float32), kind="flat")
    assert vi.search(_vecs(1, 8), 5) == [[]]
    with pytest.raises(InvalidInputError, match="dimension"):
        vi.add(["a"], _vecs(1, 9))
    with pytest.raises(InvalidInputError, match="duplicate"):
        VectorIndex.build(["a", "a"], _vecs(2, 8))
    with pytest.raises(InvalidInputError, match="unknown index kind"):
        VectorIndex.build(["a"], _vecs(1, 8), kind="lsh")
    assert choose_kind(1000) == "flat" and choose_kind(10**6) == "hnsw"


def test_corrupt_index_is_reported(tmp_path: Path) -> None:
    VectorIndex.build(["a", "b"], _vecs(2, 8)).save(tmp_path)
    (tmp_path / "items.faiss").write_bytes(b"not an index")
    with pytest.raises(NotReadyError, match="unreadable"):
        VectorIndex.load(tmp_path)
