"""Recommendations for many users at once (a nightly push, an email, a home-page cache).

Each user's list comes from the same pipeline the API uses (agent.assembly), so the ranker, the
LLM rerank and explanations, the fallbacks and the stored trace (support staff can answer "why"
for a pushed recommendation) are the API's. The engine decides where the services run:
``local`` builds one in this process and runs ``concurrency`` users at a time (threads, so the
LLM server sees concurrent requests and batches them); ``ray`` builds one per Ray actor (the
serving state is loaded once per actor, not per user) and hands each actor batches of users.

Results are appended to a JSONL file as they arrive, one line per user; a re-run with the same
``out`` skips the users already in it, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidInputError, NotFoundError
from core.models import User
from core.settings import Settings
from jobs.batch_service import build_service, recommend_users

log = logging.getLogger(__name__)

BATCH_USERS = 32  # users per Ray actor call


@dataclass
class BatchSummary:
    users: int = 0  # served in this run
    skipped: int = 0  # already in the output file (an earlier, interrupted run)
    llm_fallbacks: int = 0  # asked for the LLM, served the feature ranker's order or templates
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    out: str = ""
    run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "skipped": self.skipped,
            "llm_fallbacks": self.llm_fallbacks,
            "failed": len(self.failed),
            "seconds": round(self.seconds, 1),
            "users_per_s": round(self.users / self.seconds, 2) if self.seconds else None,
            "out": self.out,
            "run_id": self.run_id,
        }


def target_users(factory: sessionmaker[Session], users: str | Path) -> list[str]:
    """ "all" (every user in the store) or a file with one user id per line."""
    with factory() as s:
        known = [u for (u,) in s.execute(select(User.id).order_by(User.id))]
    if str(users) == "all":
        return known
    path = Path(users)
    if not path.is_file():
        raise InvalidInputError(f"--users takes 'all' or a file of user ids; {path} is neither")
    wanted = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise NotFoundError(f"{len(unknown)} unknown user id(s) in {path}: {', '.join(unknown[:5])}")
    return list(dict.fromkeys(wanted))


def done_users(out: Path) -> set[str]:
    """Users already written to ``out`` without an error (a cut-off last line is ignored)."""
    if not out.exists():
        return set()
    done = set()
    for line in out.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if "error" not in row:
            done.add(str(row["user_id"]))
    return done


def recommend_batch(
    settings: Settings,
    factory: sessionmaker[Session],
    users: Sequence[str],
    out: Path,
    when: datetime,
    *,
    k: int = 10,
    use_llm: bool = False,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    concurrency: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    if engine not in ("local", "ray"):
        raise InvalidInputError(f"unknown engine {engine!r}: local or ray")
    t0 = time.perf_counter()
    summary = BatchSummary(out=str(out), run_id=uuid.uuid4().hex[:12])
    done = done_users(out)
    left = [u for u in users if u not in done]
    summary.skipped = len(users) - len(left)
    if summary.skipped and progress:
        progress(summary.skipped)
    concurrency = concurrency or (4 if use_llm else 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    batches = [left[i : i + BATCH_USERS] for i in range(0, len(left), BATCH_USERS)]
    chunks: Iterator[list[dict[str, Any]]] = iter(())  # nothing left: no serving state is loaded
    if batches and engine == "local":
        services = build_service(settings, factory, use_llm=use_llm)
        chunks = (
            recommend_users(
                services, users, when, k=k, use_llm=use_llm, run_id=summary.run_id, concurrency=concurrency
            )
            for users in batches
        )
    elif batches:
        from jobs.ray_recommend import ray_recommend

        chunks = ray_recommend(
            factory, settings.data_dir, batches, when, k=k, use_llm=use_llm, run_id=summary.run_id,
            address=address, actors=workers or max((os.cpu_count() or 1) - 1, 1), concurrency=concurrency,
        )  # fmt: skip
    with out.open("a") as fh:
        for lines in chunks:
            for row in lines:
                if "error" in row:
                    summary.failed[row["user_id"]] = row["error"]
                else:
                    summary.users += 1
                    summary.llm_fallbacks += bool(row["llm_fallback"])
                fh.write(json.dumps(row, default=str) + "\n")
            fh.flush()
            if progress:
                progress(len(lines))
    summary.seconds = time.perf_counter() - t0
    return summary
