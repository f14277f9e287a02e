"""Bounded loopback load on POST /v1/recommendations (feature ranker, template explanations).

    CHRONOTOPE_DATA_DIR=.chronotope .venv/bin/python benchmarks/load_api.py [--workers 2]
        [--connections 16] [--seconds 20] [--no-embedding] [--driver auto|wrk|httpx] [--freshness]
    .venv/bin/python benchmarks/load_api.py --bare [--workers 2]   # the floor: FastAPI doing nothing

Needs a prepared data dir (ingest + mine + index, e.g. `chronotope demo --no-serve`). Starts
`chronotope serve --workers N` on a free 127.0.0.1 port as its own process group, waits until every
worker answers, warms up, then drives it with `wrk` (a Lua script picks a random user and hour
per request) when it is installed, else with an asyncio httpx client in this process. Prints
requests/s and p50/p95/p99 latency, errors, and each worker's resident memory. ``--freshness``
then posts an event at a brand-new place through one connection and measures how long until
every worker serves it. ``--bare`` drives benchmarks/bare_app.py instead (same uvicorn, workers and
request, a handler that does nothing): the ceiling of HTTP on these cores, to compare against.
Traffic never leaves loopback; the run is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ADMIN = "ck_benchmark_admin_key_loopback_only"
REPO = Path(__file__).resolve().parent.parent

WRK_SCRIPT = """
math.randomseed(os.time())
local users = {%s}
request = function()
  local u = users[math.random(#users)]
  local body = string.format('{"user_id": "%%s", "k": 10, "explain": true, "use_llm": false,' ..
    ' "context": {"time": "2012-11-%%02dT%%02d:00:00Z"}}', u, math.random(10, 28), math.random(0, 23))
  return wrk.format("POST", "/v1/recommendations",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %s"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50\\": %%f, \\"p95\\": %%f," ..
    " \\"p99\\": %%f, \\"non2xx\\": %%d, \\"errors\\": %%d}\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def body_for(rng: random.Random, users: list[str]) -> dict[str, object]:
    return {
        "user_id": rng.choice(users),
        "k": 10,
        "explain": True,
        "use_llm": False,
        "context": {"time": f"2012-11-{rng.randint(10, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"},
    }


async def httpx_load(base: str, users: list[str], connections: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
        ) as c:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                r = await c.post("/v1/recommendations", json=body_for(rng, users))
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += r.status_code != 200

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(connections)))
    wall = time.perf_counter() - t0
    lat = np.array(latencies)
    return {
        "requests": len(lat),
        "seconds": wall,
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "p99": float(np.percentile(lat, 99)),
        "non2xx": errors,
        "errors": 0,
    }


def wrk_load(base: str, users: list[str], connections: int, seconds: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT % (", ".join(json.dumps(u) for u in users), ADMIN))
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--timeout",
            "30s",
            "-s",
            fh.name,
            base,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    os.unlink(fh.name)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    return dict(json.loads(line[5:]))


def worker_memory_mb(server_pid: int) -> list[float]:
    """Resident memory of each uvicorn worker (children of the server process), from /proc."""

    def rss(pid: str) -> float:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1]) / 1024

    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    # uvicorn's supervisor forks the workers; multiprocessing's resource tracker is not one
    workers = [c for c in children if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]
    return [rss(c) for c in workers] or [rss(str(server_pid))]


def readyz(base: str) -> dict[str, object]:
    return dict(httpx.get(f"{base}/readyz", headers={"Connection": "close"}, timeout=10).json())


def freshness(base: str, user: str, n_workers: int) -> float:
    """Seconds from POST /v1/events (a visit to a new place) until every worker serves the place."""
    when = "2012-11-30T20:00:00Z"
    item = f"bench-new-place-{int(time.time())}"
    event = {"user_id": user, "item_id": item, "timestamp": when, "lat": 40.75, "lon": -73.99,
             "category": "Ramen Restaurant", "item_name": "A place that did not exist"}  # fmt: skip
    auth = {"Authorization": f"Bearer {ADMIN}", "Connection": "close"}
    body = {"user_id": user, "k": 20, "explain": False, "use_llm": False,
            "context": {"time": "2012-11-30T21:00:00Z", "lat": 40.75, "lon": -73.99}}  # fmt: skip
    t0 = time.perf_counter()
    r = httpx.post(f"{base}/v1/events", json={"events": [event]}, headers=auth, timeout=30)
    r.raise_for_status()
    served_by: set[int] = set()
    while time.perf_counter() - t0 < 60:
        pid = readyz(base)["serving"]["worker_pid"]  # type: ignore[index]
        rec = httpx.post(f"{base}/v1/recommendations", json=body, headers=auth, timeout=30).json()
        if item in [i["item_id"] for i in rec["items"]]:
            served_by.add(pid)
        if len(served_by) >= n_workers:
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise SystemExit(f"the new place was not served by every worker within 60 s (by {served_by})")


def start_serve(workers: int, extra_env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    """`chronotope serve --workers N` on a free 127.0.0.1 port as its own process group: LLM off,
    the benchmark's admin key, no rate limit (one key drives the whole load), plus ``extra_env``.
    Stop it with ``os.killpg(server.pid, signal.SIGTERM)``."""
    port = free_port()
    env = {
        **os.environ,
        "CHRONOTOPE_LLM__ENABLED": "false",
        "CHRONOTOPE_API__BOOTSTRAP_ADMIN_KEY": ADMIN,
        "CHRONOTOPE_API__RATE_LIMIT_PER_S": "0",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-metrics-"),
        **extra_env,
    }
    exe = Path(sys.executable).parent / "chronotope"
    server = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return f"http://127.0.0.1:{port}", server


def start_bare(workers: int) -> tuple[str, subprocess.Popen[bytes]]:
    """benchmarks/bare_app.py under uvicorn with ``workers`` workers, its own process group."""
    port = free_port()
    exe = Path(sys.executable).parent / "uvicorn"
    cmd = [str(exe), "bare_app:app", "--app-dir", str(REPO / "benchmarks"), "--port", str(port)]
    server = subprocess.Popen(
        [*cmd, "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return f"http://127.0.0.1:{port}", server


def wait_workers(base: str, server: subprocess.Popen[bytes], workers: int) -> float:
    """Seconds until every worker has loaded its state and answers."""
    t0 = time.monotonic()
    pids: set[int] = set()
    while len(pids) < workers:
        if server.poll() is not None or time.monotonic() - t0 > 600:
            raise SystemExit("the server did not start (run `chronotope serve` by hand to see why)")
        try:
            pids.add(int(readyz(base)["serving"]["worker_pid"]))  # type: ignore[index]
        except (httpx.HTTPError, KeyError, ValueError):
            time.sleep(0.5)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--no-embedding", action="store_true", help="serve without the FAISS source")
    ap.add_argument("--driver", choices=["auto", "wrk", "httpx"], default="auto")
    ap.add_argument("--freshness", action="store_true", help="also time a new place reaching every worker")
    ap.add_argument("--bare", action="store_true", help="drive a FastAPI app that does nothing (the floor)")
    a = ap.parse_args()
    if a.bare:
        users = [f"user-{i}" for i in range(100)]
        base, server = start_bare(a.workers)
        run_load(a, base, server, users, "bare FastAPI (benchmarks/bare_app.py)")
        return
    sys.path.insert(0, str(REPO))
    from sqlalchemy import select

    from core.db import open_store
    from core.models import User
    from core.settings import Settings

    settings = Settings()
    _, factory = open_store(settings)
    with factory() as sess:
        users = list(sess.scalars(select(User.id).limit(2000)))
    if not users:
        raise SystemExit(f"no users in {settings.resolved_db_url}: run `chronotope demo --no-serve` first")
    extra = {"CHRONOTOPE_API__REMINE_AFTER_EVENTS": "false"}
    if a.no_embedding:
        extra["CHRONOTOPE_RETRIEVAL__EMBEDDING_SOURCE"] = "false"
    base, server = start_serve(a.workers, extra)
    embedding = "off" if a.no_embedding else "on"
    what = f"/v1/recommendations, feature ranker + template explanations, embedding {embedding}"
    run_load(a, base, server, users, what)


def run_load(
    a: argparse.Namespace, base: str, server: subprocess.Popen[bytes], users: list[str], what: str
) -> None:
    driver = a.driver if a.driver != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    try:
        started = wait_workers(base, server, a.workers)
        asyncio.run(httpx_load(base, users, 4, 3))  # warm-up
        res = (
            wrk_load(base, users, a.connections, a.seconds)
            if driver == "wrk"
            else asyncio.run(httpx_load(base, users, a.connections, a.seconds))
        )
        mem = worker_memory_mb(server.pid)
        fresh = freshness(base, users[0], a.workers) if a.freshness else None
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    print(
        f"{what}, {a.workers} worker(s), {a.connections} connections, "
        f"driver {driver}: {res['requests']:.0f} requests in {res['seconds']:.1f} s = "
        f"{res['requests'] / res['seconds']:.0f} req/s; p50 {res['p50']:.0f} ms, p95 {res['p95']:.0f} ms, "
        f"p99 {res['p99']:.0f} ms; non-2xx {res['non2xx']:.0f}, socket errors {res['errors']:.0f}; "
        f"workers ready after {started:.0f} s, resident memory per worker "
        + ", ".join(f"{m:.0f} MB" for m in mem)
        + (f"; a new place served by every worker {fresh:.2f} s after POST /v1/events" if fresh else "")
    )


if __name__ == "__main__":
    main()
