"""Bounded loopback load on POST /v1/recommendations with the feature ranker (no LLM).

    CHRONOTOPE_DATA_DIR=.chronotope .venv/bin/python benchmarks/load_api.py [--clients 16] [--requests 2000]
        [--seconds 60] [--no-embedding]

Needs a prepared data dir (ingest + mine, e.g. after `chronotope demo --no-serve`). Starts the app
under uvicorn on a free 127.0.0.1 port in its own process (so the clients do not share its GIL),
runs N concurrent clients until the request budget or the time limit is spent, then prints
p50/p95/p99 latency and throughput. Traffic never leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import socket
import time

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_load(
    base: str, key: str, users: list[str], clients: int, budget: int, seconds: float
) -> list[float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    counter = {"left": budget}

    async def worker(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as c:
            while counter["left"] > 0 and time.monotonic() < deadline:
                counter["left"] -= 1
                body = {
                    "user_id": rng.choice(users),
                    "k": 10,
                    "explain": True,
                    "use_llm": False,
                    "context": {"time": f"2012-11-{rng.randint(10, 28)}T{rng.randint(0, 23):02d}:00:00Z"},
                }
                t0 = time.perf_counter()
                r = await c.post("/v1/recommendations", json=body)
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors += 1

    await asyncio.gather(*(worker(i) for i in range(clients)))
    if errors:
        print(f"errors: {errors}")
    return latencies


def _serve(port: int, no_embedding: bool) -> None:
    """The app under uvicorn, in its own process: the load generator must not share its GIL."""
    import uvicorn

    from api.app import build_state, create_app
    from core.db import open_store
    from core.settings import Settings
    from retrieval.service import Retriever

    s = Settings()
    _, factory = open_store(s)
    retriever = Retriever.load(s, factory, load_index=not no_embedding)
    state = build_state(s, retriever=retriever, use_llm=False)
    uvicorn.run(create_app(s, state=state), host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--no-embedding", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("CHRONOTOPE_LLM__ENABLED", "false")
    from sqlalchemy import select

    from api.auth import create_key
    from core.db import open_store
    from core.models import User
    from core.settings import Settings

    _, factory = open_store(Settings())
    with factory() as sess:
        key = create_key(sess, "admin")
        sess.commit()
        users = list(sess.scalars(select(User.id)))
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, a.no_embedding))
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):  # loading the catalog, histories and (optionally) the embedder
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if not server.is_alive():
                raise SystemExit("the server process died while starting")
            time.sleep(0.1)
        asyncio.run(run_load(base, key, users, 4, 40, 30))  # warm-up
        t0 = time.perf_counter()
        lat = np.array(asyncio.run(run_load(base, key, users, a.clients, a.requests, a.seconds)))
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.join(10)
    print(
        f"/v1/recommendations, feature ranker, embedding {'off' if a.no_embedding else 'on'}, "
        f"{a.clients} clients: {len(lat)} requests in {wall:.1f} s = {len(lat) / wall:.0f} req/s; "
        f"p50 {np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, "
        f"p99 {np.percentile(lat, 99):.0f} ms"
    )


if __name__ == "__main__":
    main()
