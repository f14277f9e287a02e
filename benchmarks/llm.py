"""LLM stage latency against a running server (the embedded vLLM by default).

    .venv/bin/chronotope llm serve &   # or set CHRONOTOPE_LLM_BASE_URL
    .venv/bin/python benchmarks/llm.py [--runs 10] [--users 8] [--rerank-only]

Prints rerank latency p50/p95 for 20 candidates, explanation latency for 5 items, and batched
throughput: the same N rerank requests sent concurrently vs one at a time (vLLM batches them).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np

from agent.llm.explain import Explainer
from agent.llm.rerank import LLMReranker
from core.settings import Settings
from mining import Fact, UserProfile
from retrieval.types import Candidate, RequestContext

CATS = [
    "Coffee Shop",
    "Bar",
    "Art Museum",
    "Park",
    "Gym",
    "Pizza Place",
    "Bookstore",
    "Subway",
    "Office",
    "Deli",
]


def profile(i: int) -> UserProfile:
    facts = [
        Fact("data.summary", "data", f"{100 + i} events at 30 places over 200 days.", {}, 100 + i, 1.0),
        Fact("rhythm.peak_hours", "rhythm", f"Most active around {8 + i % 12}:00 local time.", {}, 100, 1.0),
        Fact(
            "habit.wd_evening", "habit", f"On weekday evenings: mostly at {CATS[i % 10]} places.", {}, 30, 0.8
        ),
        Fact("trans.next", "transition", "After Office, likely next: Coffee Shop, Bar.", {}, 20, 0.6),
    ]
    return UserProfile(f"u{i}", facts, " ".join(f.statement for f in facts[1:]), 100 + i, None)


def candidates(seed: int, n: int = 20) -> list[Candidate]:
    rng = np.random.default_rng(seed)
    return [
        Candidate(
            item_id=f"i{seed}-{j}",
            category=CATS[int(rng.integers(10))],
            lat=40.75,
            lon=-73.98,
            sources=["repeat"] if j < 5 else ["popular"],
            features={
                "user_count_log": float(np.log1p(rng.integers(0, 9))),
                "distance_km": float(rng.random() * 5),
            },
            score=float(1 - j / 20),
        )
        for j in range(n)
    ]


def pct(xs: list[float]) -> str:
    a = np.array(xs)
    return f"p50 {np.percentile(a, 50):.2f} s, p95 {np.percentile(a, 95):.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--rerank-only", action="store_true", help="Time the rerank alone (no explanations).")
    a = ap.parse_args()
    s = Settings(llm={"timeout_s": 120, "retries": 0})
    rr, ex = LLMReranker(s), Explainer(s)
    ctx = RequestContext(time=datetime(2012, 12, 5, 19, tzinfo=UTC), text="somewhere for the evening")
    rr.rerank(profile(0), ctx, candidates(0))  # warm-up: grammar compile, prefix cache
    times = []
    for i in range(a.runs):
        t = time.perf_counter()
        out = rr.rerank(profile(i % 3), ctx, candidates(i))
        times.append(time.perf_counter() - t)
        assert out.error is None, out.error
    print(f"rerank, 20 candidates, 1 order: {pct(times)} over {a.runs} runs ({s.llm.model_name})")
    if a.rerank_only:
        return
    times = []
    for i in range(max(3, a.runs // 3)):
        t = time.perf_counter()
        e = ex.explain(profile(i), ctx, candidates(100 + i)[:5])
        times.append(time.perf_counter() - t)
    print(f"explanations, 5 items (concurrent): {pct(times)}; last source: {e.source}")
    t = time.perf_counter()
    for i in range(a.users):
        rr.rerank(profile(i), ctx, candidates(200 + i))
    seq = time.perf_counter() - t
    t = time.perf_counter()
    with ThreadPoolExecutor(a.users) as pool:
        list(pool.map(lambda i: rr.rerank(profile(i), ctx, candidates(300 + i)), range(a.users)))
    par = time.perf_counter() - t
    print(
        f"{a.users} users: one at a time {seq:.1f} s ({a.users / seq:.2f} reranks/s), "
        f"concurrent {par:.1f} s ({a.users / par:.2f} reranks/s), x{seq / par:.1f}"
    )


if __name__ == "__main__":
    main()
