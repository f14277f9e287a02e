"""A bounded mixed load against a running server, then an audit of the store: was anything lost?

The load (asyncio + httpx, loopback only) mixes recommendations, chat turns, `POST /v1/events`
batches with fresh event ids, and feedback on recommendations served in the same run, for a fixed
time at a fixed number of connections. Every acknowledged write and every served recommendation is
remembered; the audit then checks the store: each acknowledged event there exactly once, each
acknowledged feedback event there, each served recommendation's trace there (traces are written in
batches, so the audit waits for them up to ``trace_wait_s``). Server errors are counted by status.

Used by ``tests/integration/test_mixed_load.py`` (a short run in CI) and
``benchmarks/mixed_load.py`` (60 s at 16 connections, the figures in docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Event, Recommendation

WISHES = ("a museum", "somewhere for coffee", "a bar tonight", "a park", "no coffee please", "something new")
MIX = (("recommend", 0.55), ("chat", 0.15), ("events", 0.15), ("feedback", 0.15))


@dataclass
class LoadResult:
    seconds: float = 0.0
    connections: int = 0
    requests: Counter[str] = field(default_factory=Counter)  # per operation
    statuses: Counter[str] = field(default_factory=Counter)  # "op status"
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # acknowledged event ids
    feedback: list[str] = field(default_factory=list)  # acknowledged feedback event ids
    recommendations: list[str] = field(default_factory=list)  # served recommendation ids
    transport_errors: int = 0  # no HTTP answer at all (connection reset, timeout)

    @property
    def server_errors(self) -> int:
        return sum(n for k, n in self.statuses.items() if k.split()[-1].startswith("5"))

    def summary(self) -> dict[str, Any]:
        lat = {}
        for op, xs in self.latencies_ms.items():
            s = sorted(xs)
            lat[op] = {"p50": round(s[len(s) // 2], 1), "p95": round(s[int(len(s) * 0.95)], 1), "n": len(s)}
        total = sum(self.requests.values())
        return {
            "seconds": round(self.seconds, 1),
            "connections": self.connections,
            "requests": total,
            "requests_per_s": round(total / self.seconds, 1) if self.seconds else 0.0,
            "by_operation": dict(self.requests),
            "statuses": dict(self.statuses),
            "server_errors": self.server_errors,
            "transport_errors": self.transport_errors,
            "latency_ms": lat,
            "acknowledged": {
                "events": len(self.events),
                "feedback": len(self.feedback),
                "recommendations": len(self.recommendations),
            },
        }


async def run_load(
    base_url: str,
    admin_key: str,
    users: list[str],
    items: list[str],
    *,
    seconds: float = 10.0,
    connections: int = 8,
    seed: int = 0,
    request_timeout_s: float = 30.0,
) -> LoadResult:
    """Drive the mix for ``seconds`` over ``connections`` concurrent clients (each one request at
    a time). ``users`` must exist in the store; ``items`` are places new events may name."""
    rng = random.Random(seed)
    out = LoadResult(connections=connections)
    served: list[tuple[str, list[str]]] = []  # (recommendation id, its items), for feedback
    headers = {"Authorization": f"Bearer {admin_key}"}
    ops = [op for op, _ in MIX]
    weights = [w for _, w in MIX]
    t_end = time.monotonic() + seconds
    run_id = uuid.uuid4().hex[:8]
    counter = 0

    async def one(client: httpx.AsyncClient, op: str) -> None:
        nonlocal counter
        user = rng.choice(users)
        when = datetime(2012, 6, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 30))
        if op == "feedback" and not served:
            op = "recommend"
        if op == "recommend":
            body: dict[str, Any] = {
                "user_id": user,
                "k": 5,
                "use_llm": False,
                "context": {"time": when.isoformat()},
            }
            path = "/v1/recommendations"
        elif op == "chat":
            body = {"user_id": user, "message": rng.choice(WISHES), "time": when.isoformat()}
            path = "/v1/chat"
        elif op == "events":
            batch = []
            for _ in range(5):
                counter += 1
                batch.append(
                    {
                        "event_id": f"load-{run_id}-{counter}",
                        "user_id": rng.choice(users),
                        "item_id": rng.choice(items),
                        "timestamp": (when + timedelta(minutes=counter % 600)).isoformat(),
                    }
                )
            body, path = {"events": batch}, "/v1/events"
        else:
            rec_id, rec_items = rng.choice(served)
            kind = rng.choice(("clicked", "accepted", "rejected"))
            body = {"kind": kind, "item_id": rng.choice(rec_items)}
            path = f"/v1/recommendations/{rec_id}/feedback"
        out.requests[op] += 1
        t0 = time.perf_counter()
        try:
            r = await client.post(path, json=body, headers=headers, timeout=request_timeout_s)
        except httpx.HTTPError:
            out.transport_errors += 1
            return
        out.latencies_ms.setdefault(op, []).append((time.perf_counter() - t0) * 1000)
        out.statuses[f"{op} {r.status_code}"] += 1
        if r.status_code >= 300:
            return
        data = r.json()
        if op == "recommend" and data.get("items"):
            out.recommendations.append(data["recommendation_id"])
            served.append((data["recommendation_id"], [i["item_id"] for i in data["items"]]))
        elif op == "chat" and data.get("recommendation_id"):
            out.recommendations.append(data["recommendation_id"])
        elif op == "events" and not data.get("errors"):
            out.events.extend(e["event_id"] for e in body["events"])
        elif op == "feedback":
            out.feedback.append(data["event_id"])

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < t_end:
            await one(client, rng.choices(ops, weights)[0])

    t0 = time.perf_counter()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    out.seconds = time.perf_counter() - t0
    return out


def audit(factory: sessionmaker[Session], result: LoadResult, trace_wait_s: float = 15.0) -> dict[str, Any]:
    """What of the acknowledged work is in the store: missing and duplicated ids per kind."""
    with factory() as s:
        found = _counts(s, Event.id, result.events)
        fb = _counts(s, Event.id, result.feedback)
    deadline = time.monotonic() + trace_wait_s
    while True:  # traces are written in batches, off the request path
        with factory() as s:
            recs = _counts(s, Recommendation.id, result.recommendations)
        if len(recs) == len(set(result.recommendations)) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    return {
        "events": {"acknowledged": len(result.events), "missing": _missing(result.events, found),
                   "duplicated": sum(1 for n in found.values() if n > 1)},
        "feedback": {"acknowledged": len(result.feedback), "missing": _missing(result.feedback, fb)},
        "traces": {"served": len(result.recommendations), "missing": _missing(result.recommendations, recs)},
    }  # fmt: skip


def _counts(s: Session, column: Any, ids: list[str]) -> dict[str, int]:
    got: dict[str, int] = {}
    unique = sorted(set(ids))
    for i in range(0, len(unique), 500):
        rows = s.execute(
            select(column, func.count()).where(column.in_(unique[i : i + 500])).group_by(column)
        ).all()
        got.update({str(k): int(n) for k, n in rows})
    return got


def _missing(ids: list[str], found: dict[str, int]) -> int:
    return sum(1 for i in set(ids) if i not in found)
