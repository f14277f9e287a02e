"""ANN index vs exact search on 384-d unit vectors: build time, query p50/p95, recall@100, speed-up.

    .venv/bin/python benchmarks/retrieval_index.py [--n 100000 1000000] [--data clustered uniform]
        [--index ivf hnsw] [--hnsw-max-n 1000000]

Two kinds of random data:
- ``clustered``: a mixture of 2,000 Gaussian clusters on the sphere, which is how real text
  embeddings are distributed (topics); the case the product's index settings are tuned for.
- ``uniform``: isotropic Gaussian vectors. No ANN method does well here: in 384 dimensions every
  point is nearly equidistant, so "the exact top-100" of a query is mostly noise. Reported as the
  worst case, not as a target.
Queries are perturbed data points (a real query resembles some items). Recall@100 is the share of
the exact top-100 (IndexFlatIP) that the ANN index returns; one query at a time, as the service does.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Any

import faiss
import numpy as np

from retrieval.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

DIM = 384
CLUSTER_NOISE = 1.0


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    if kind == "uniform":
        return _unit(rng.standard_normal((n, DIM), dtype=np.float32))
    # Noise of norm ~CLUSTER_NOISE around unit centres: two items of one topic have cosine
    # ~1/(1+CLUSTER_NOISE^2) = 0.5, about what sentence embeddings of related texts show.
    centers = _unit(rng.standard_normal((2000, DIM), dtype=np.float32))
    x = centers[rng.integers(0, 2000, n)] + CLUSTER_NOISE * rng.standard_normal(
        (n, DIM), dtype=np.float32
    ) / np.sqrt(DIM)
    return _unit(x.astype(np.float32))


def per_query(index: faiss.Index, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids, times = [], []
    for row in q:
        t = time.perf_counter()
        _, i = index.search(row[None, :], k)
        times.append(time.perf_counter() - t)
        ids.append(i[0])
    return np.array(ids), np.array(times) * 1000


def _report(
    prefix: str, name: str, build_s: float, index: Any, *, q: np.ndarray, truth: np.ndarray, exact_p50: float
) -> None:
    got, ta = per_query(index, q, 100)
    recall = np.mean([len(set(g) & set(tr)) / 100 for g, tr in zip(got, truth, strict=True)])
    print(
        f"{prefix} {name:28s} build {build_s:6.1f} s | "
        f"p50 {np.percentile(ta, 50):6.2f} ms p95 {np.percentile(ta, 95):6.2f} ms | "
        f"exact p50 {exact_p50:7.2f} ms | x{exact_p50 / np.percentile(ta, 50):6.1f} | "
        f"recall@100 {recall:.3f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--data", nargs="+", default=["clustered", "uniform"])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--index", nargs="+", default=["ivf", "hnsw"], help="ivf and/or hnsw")
    ap.add_argument("--hnsw-max-n", type=int, default=1_000_000, help="skip HNSW builds above this n")
    a = ap.parse_args()
    faiss.omp_set_num_threads(2)
    for data in a.data:
        for n in a.n:
            rng = np.random.default_rng(0)
            x = make(rng, n, data)
            q = _unit(
                x[rng.choice(n, a.queries, replace=False)]
                + 0.05 * rng.standard_normal((a.queries, DIM), dtype=np.float32)
            )
            flat = faiss.IndexFlatIP(DIM)
            flat.add(x)
            truth, te = per_query(flat, q, 100)
            base_p50 = float(np.percentile(te, 50))

            report = partial(_report, f"{data:9s} n={n:>9,}", q=q, truth=truth, exact_p50=base_p50)

            if "ivf" in a.index:
                nlist = 4096 if n >= 500_000 else 1024
                t = time.perf_counter()
                ivf: Any = faiss.index_factory(DIM, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
                ivf.train(x[rng.choice(n, min(n, 50 * nlist), replace=False)])
                ivf.add(x)
                t_build = time.perf_counter() - t
                for nprobe in (16, 32, 64, 128):
                    ivf.nprobe = nprobe
                    report(f"IVF{nlist},Flat nprobe={nprobe}", t_build, ivf)
                del ivf
            if "hnsw" in a.index and n <= a.hnsw_max_n:
                # The product's large-catalog index (retrieval/index.py settings).
                t = time.perf_counter()
                hnsw = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
                hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
                hnsw.add(x)
                t_build = time.perf_counter() - t
                for ef in (64, HNSW_EF_SEARCH, 256):
                    hnsw.hnsw.efSearch = ef
                    report(f"HNSW{HNSW_M} efSearch={ef}", t_build, hnsw)
                del hnsw
            del flat, x


if __name__ == "__main__":
    main()
