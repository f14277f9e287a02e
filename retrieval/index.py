"""FAISS vector index over item embeddings, with the item id <-> vector id mapping persisted.

Exact inner product (Flat) for small catalogs, HNSW for large ones (chosen by size unless
overridden). Items can be added without a rebuild. GPU FAISS is used only when present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidInputError, NotReadyError

HNSW_FROM = 50_000  # below this, exact search is fast enough and has perfect recall
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
IVF_NPROBE = 32


def choose_kind(n: int, kind: str = "auto") -> str:
    if kind != "auto":
        return kind
    return "flat" if n < HNSW_FROM else "hnsw"


def _factory(dim: int, kind: str, n: int) -> Any:
    import faiss

    base: Any

    if kind == "flat":
        base = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        base.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf":
        nlist = max(16, int(4 * np.sqrt(max(n, 1))))
        base = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    else:
        raise InvalidInputError(f"unknown index kind {kind!r}: auto, flat, hnsw or ivf")
    return faiss.IndexIDMap2(base)


class VectorIndex:
    def __init__(self, index: Any, ids: list[str], kind: str, model: str) -> None:
        self.index = index
        self.ids = ids  # vector id (position) -> item id
        self.pos = {item: i for i, item in enumerate(ids)}
        self.kind = kind
        self.model = model

    @property
    def dim(self) -> int:
        return int(self.index.d)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls, item_ids: list[str], vectors: np.ndarray, *, kind: str = "auto", model: str = ""
    ) -> VectorIndex:
        if len(item_ids) != len(vectors):
            raise InvalidInputError(f"{len(item_ids)} ids for {len(vectors)} vectors")
        if len(set(item_ids)) != len(item_ids):
            raise InvalidInputError("duplicate item ids")
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise InvalidInputError("vectors must be a 2-d array")
        kind = choose_kind(len(item_ids), kind)
        index = _factory(vectors.shape[1], kind, len(item_ids))
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if kind == "ivf":
            if len(x) < 40:
                raise InvalidInputError("an IVF index needs at least 40 vectors to train; use flat")
            import faiss

            index.train(x)  # type: ignore[attr-defined]
            faiss.extract_index_ivf(index).nprobe = IVF_NPROBE
        vi = cls(index, [], kind, model)
        vi.add(item_ids, x)
        return vi

    def add(self, item_ids: list[str], vectors: np.ndarray) -> int:
        """Add new items (ids already present are skipped); returns how many were added."""
        if len(vectors) and vectors.shape[1] != self.dim:
            raise InvalidInputError(f"vectors have dimension {vectors.shape[1]}, the index {self.dim}")
        keep = [i for i, item in enumerate(item_ids) if item not in self.pos]
        if not keep:
            return 0
        start = len(self.ids)
        new_ids = np.arange(start, start + len(keep), dtype=np.int64)
        self.index.add_with_ids(np.ascontiguousarray(vectors[keep], dtype=np.float32), new_ids)  # type: ignore[attr-defined]
        for j, i in enumerate(keep):
            self.ids.append(item_ids[i])
            self.pos[item_ids[i]] = start + j
        return len(keep)

    def search(self, query: np.ndarray, k: int = 50) -> list[list[tuple[str, float]]]:
        if len(self.ids) == 0:
            return [[] for _ in range(len(query))]
        q = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise InvalidInputError(f"query has dimension {q.shape[1]}, the index {self.dim}")
        scores, ids = self.index.search(q, min(k, len(self.ids)))  # type: ignore[attr-defined]
        return [
            [(self.ids[int(i)], float(s)) for s, i in zip(srow, irow, strict=True) if i >= 0]
            for srow, irow in zip(scores, ids, strict=True)
        ]

    def search_positions(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """One query's ``k`` best (positions in ``ids``, scores), best first: for a caller that
        keeps its own position -> item map and needs no id strings."""
        if not len(self.ids):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        scores, pos = self.index.search(q, min(k, len(self.ids)))  # type: ignore[attr-defined]
        keep = pos[0] >= 0
        return pos[0][keep].astype(np.int64), scores[0][keep]

    def save(self, folder: Path) -> None:
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "items.faiss.tmp"
        faiss.write_index(self.index, str(tmp))
        (folder / "items.ids.json.tmp").write_text(
            json.dumps({"ids": self.ids, "kind": self.kind, "model": self.model})
        )
        tmp.replace(folder / "items.faiss")  # replace both only once both are written
        (folder / "items.ids.json.tmp").replace(folder / "items.ids.json")

    @classmethod
    def load(cls, folder: Path) -> VectorIndex:
        import faiss

        path, meta_path = folder / "items.faiss", folder / "items.ids.json"
        if not path.exists() or not meta_path.exists():
            raise NotReadyError(f"no index in {folder}: run `chronotope index`")
        try:
            index: Any = faiss.read_index(str(path))
            meta = json.loads(meta_path.read_text())
        except Exception as exc:
            raise NotReadyError(
                f"the index in {folder} is unreadable ({exc}); rebuild with `chronotope index --rebuild`"
            ) from exc
        if index.ntotal != len(meta["ids"]):
            raise NotReadyError(
                f"index and id map disagree in {folder}; rebuild with `chronotope index --rebuild`"
            )
        if faiss.get_num_gpus() > 0:  # pragma: no cover - no GPU on our machines
            index = faiss.index_cpu_to_all_gpus(index)
        # Search-time parameters are not all saved with the index: set them again.
        if meta["kind"] == "hnsw":
            hnsw: Any = faiss.downcast_index(index.index)
            hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        elif meta["kind"] == "ivf":
            faiss.extract_index_ivf(index).nprobe = IVF_NPROBE
        return cls(index, list(meta["ids"]), meta["kind"], meta.get("model", ""))
