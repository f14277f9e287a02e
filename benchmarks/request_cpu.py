"""CPU and wall time of one recommendation in-process, through the pipeline the API serves.

    CHRONOTOPE_DATA_DIR=<a store with events, profiles, a ranker and an index> \
        .venv/bin/python benchmarks/request_cpu.py [--requests 300] [--no-explain] [--no-embedding]

Random users of the store at random hours, no LLM, template explanations with their faithfulness
checks, every trace stored in batches off the request (as the API does). Prints wall and CPU
milliseconds per request (p50, p95, mean) after a warm-up; the CPU figure is the process's CPU time
over the timed requests divided by their number, so the trace writer's share is included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from agent.assembly import build_services
from agent.pipeline import RecommendOptions
from core.db import open_store
from core.settings import Settings
from retrieval.types import RequestContext


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--no-explain", action="store_true")
    ap.add_argument("--no-embedding", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not os.environ.get("CHRONOTOPE_DATA_DIR"):
        raise SystemExit("set CHRONOTOPE_DATA_DIR to a store (e.g. the demo's: chronotope demo --no-serve)")
    s = Settings(data_dir=Path(os.environ["CHRONOTOPE_DATA_DIR"]), llm={"enabled": False})
    if a.no_embedding:
        s = s.model_copy(update={"retrieval": s.retrieval.model_copy(update={"embedding_source": False})})
    _, factory = open_store(s)
    t0 = time.perf_counter()
    services = build_services(s, factory)
    print(f"serving core built in {time.perf_counter() - t0:.1f} s ({services.domain.name})")
    users = sorted(services.retriever.histories)
    rng = np.random.default_rng(a.seed)
    opts = RecommendOptions(explain=not a.no_explain, use_llm=False)
    start = datetime(2012, 11, 10, tzinfo=UTC)

    def one() -> float:
        u = users[int(rng.integers(len(users)))]
        when = start + timedelta(hours=int(rng.integers(0, 24 * 30)))
        t = time.perf_counter()
        services.pipeline.run(u, RequestContext(time=when), 10, opts)
        return (time.perf_counter() - t) * 1000

    for _ in range(20):
        one()
    cpu0 = time.process_time()
    wall = [one() for _ in range(a.requests)]
    cpu = (time.process_time() - cpu0) * 1000 / a.requests
    services.close()
    print(
        f"{a.requests} requests: wall p50 {statistics.median(wall):.1f} ms, "
        f"p95 {np.percentile(wall, 95):.1f} ms, "
        f"mean {statistics.mean(wall):.1f} ms; CPU {cpu:.1f} ms per request "
        f"(explanations {'off' if a.no_explain else 'on'}, embedding {'off' if a.no_embedding else 'on'})"
    )


if __name__ == "__main__":
    main()
