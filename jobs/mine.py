"""Mining runs over the store: read users' events, mine them with the pure ``mining`` functions,
save new profile versions (``retrieval.profile_store``) and record the state change servers follow.

A batch job, not part of serving: ``chronotope mine`` runs it for everyone, the API's background
miner (``jobs.background_mining``) for the users whose events just arrived.

Users are split into batches of ``CHUNK_USERS``; each batch is mined by the same function
whichever engine runs it (``local``: this process or a process pool; ``ray``: Ray tasks, see
``jobs.engines``) and stored in one transaction. Storing is idempotent (``save_profile`` writes no
version when nothing changed), so a batch retried after a crash or a killed worker adds no
duplicate versions. A whole-store run keeps a journal of finished batches under the data dir: a
re-run after an interruption mines only the users left.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.errors import NotFoundError
from core.events_frame import events_frame
from core.models import User
from core.state_changes import record_change
from domains import clock_of, get_domain, stored_domain
from jobs.engines import TASK_RETRIES, check_store_for_ray, factory_for, start_ray, store_url
from mining import GlobalStats, UserProfile, build_profile, global_stats
from mining.plan import MiningPlan
from retrieval.profile_store import latest_profile_version, save_profile

log = logging.getLogger(__name__)

T = TypeVar("T")

CHUNK_USERS = 64
STORE_TRIES = 3  # a dropped database connection is retried this many times per batch


class MineCounts(TypedDict):
    mined: int
    new_versions: int
    skipped: int  # done by an interrupted earlier run
    failed: dict[str, str]  # user id -> why


@dataclass
class BatchResult:
    mined: int = 0
    new_versions: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # user id -> why their mining failed

    def add(self, other: BatchResult) -> None:
        self.mined += other.mined
        self.new_versions += other.new_versions
        self.failed.update(other.failed)


Mined = tuple[list[UserProfile], dict[str, str]]  # profiles, and user id -> why mining failed
# (domain name, clock): what a batch mines with, small enough to send to a worker process or task
PlanSpec = tuple[str, str]


def plan_of(spec: PlanSpec) -> MiningPlan:
    return get_domain(spec[0]).mining_plan(spec[1])


def plan_spec(factory: sessionmaker[Session], setting: str = "auto") -> PlanSpec:
    """The store's domain (or the setting's) and whether its times carry a zone."""
    with factory() as s:
        stored, _ = stored_domain(s)
        return (setting if setting != "auto" else stored or "places", clock_of(s))


def global_stats_path(data_dir: Path) -> Path:
    return data_dir / "models" / "global_stats.pkl"


def load_global_stats(data_dir: Path) -> GlobalStats | None:
    p = global_stats_path(data_dir)
    if not p.exists():
        return None
    with p.open("rb") as fh:
        gs = pickle.load(fh)
    return gs if isinstance(gs, GlobalStats) else None


def mine_frame(df: pd.DataFrame, users: Sequence[str], gs: GlobalStats | None, spec: PlanSpec) -> Mined:
    """Profiles for ``users`` from their events in ``df``; a user whose mining raises is reported
    (id -> error) and the others go on."""
    groups = dict(tuple(df.groupby(C.USER, sort=False))) if len(df) else {}
    empty = df.iloc[0:0]
    plan = plan_of(spec)
    profiles, failed = [], {}
    for u in users:
        try:
            profiles.append(build_profile(groups.get(u, empty), u, global_stats=gs, plan=plan))
        except Exception as exc:  # corrupt events of one user must not sink the batch
            failed[u] = f"{type(exc).__name__}: {exc}"[:300]
            log.error("mining user %s failed: %s", u, failed[u])
    return profiles, failed


def store_profiles(factory: sessionmaker[Session], profiles: list[UserProfile]) -> int:
    """Save the profiles in one transaction (a dropped connection is retried); returns how many
    new versions were written. Idempotent: storing the same profiles again writes none."""

    def store() -> int:
        with factory() as s:
            changed = []
            for p in profiles:
                before = latest_profile_version(s, p.user_id)
                if save_profile(s, p) != before:
                    changed.append(p.user_id)
            record_change(s, "profiles", changed)  # servers re-read what depends on the text
            s.commit()
        return len(changed)

    def store_once_more_if_raced() -> int:
        # Another miner (the API's background one, a CLI run) stored a version of one of these
        # users between our read and our write: store again over what it wrote (idempotent).
        try:
            return store()
        except IntegrityError:
            log.info("another miner stored a profile version meanwhile; storing again over it")
            return store()

    return with_retries(store_once_more_if_raced, f"storing {len(profiles)} profiles")


def read_events(factory: sessionmaker[Session], users: list[str] | None = None) -> pd.DataFrame:
    """These users' events, every event when ``users`` is None (a dropped connection is retried)."""

    def read() -> pd.DataFrame:
        with factory() as s:
            return events_frame(s, users)

    return with_retries(
        read, "reading every event" if users is None else f"reading {len(users)} users' events"
    )


def with_retries(fn: Callable[[], T], what: str) -> T:
    """``fn()``, run again with backoff (1, 2 s) when the database connection fails, STORE_TRIES
    times in all; the last failure is raised."""
    for attempt in range(1, STORE_TRIES):
        try:
            return fn()
        except OperationalError as exc:
            log.warning("%s failed (%s); retrying", what, str(exc)[:200])
            time.sleep(0.5 * 2**attempt)
    return fn()


def mine_batch_from_store(
    factory: sessionmaker[Session], users: list[str], gs: GlobalStats | None, spec: PlanSpec
) -> BatchResult:
    """One batch end to end: read these users' events, mine, store (what a Ray task runs)."""
    df = read_events(factory, users)
    profiles, failed = mine_frame(df, users, gs, spec)
    return BatchResult(len(profiles), store_profiles(factory, profiles), failed)


def _mine_chunk(args: tuple[pd.DataFrame, list[str], GlobalStats | None, PlanSpec]) -> Mined:
    return mine_frame(*args)


def mine_task(url: str, users: list[str], gs: GlobalStats | None, spec: PlanSpec) -> Any:
    """The Ray task: one batch, the store reopened from its URL once per worker process."""
    return mine_batch_from_store(factory_for(url), users, gs, spec)


def ray_mine(
    factory: sessionmaker[Session],
    batches: list[list[str]],
    gs: GlobalStats | None,
    spec: PlanSpec,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    task_fn: Callable[[str, list[str], GlobalStats | None, PlanSpec], Any] = mine_task,
) -> Iterator[tuple[list[str], Any]]:
    """Run every batch as a Ray task; yields (users, BatchResult) as tasks finish. ``task_fn``
    is the task (tests wrap it to kill a worker mid-way)."""
    url = store_url(factory)
    check_store_for_ray(url, address)
    ray = start_ray(address, num_cpus)
    task = ray.remote(max_retries=TASK_RETRIES, retry_exceptions=False)(task_fn)
    gs_ref = ray.put(gs)
    pending = {task.remote(url, users, gs_ref, spec): users for users in batches}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            yield pending.pop(ref), ray.get(ref)


class Journal:
    """The batches a whole-store run has finished, so an interrupted run resumes where it stopped.
    Keyed by the run's user list: a store with other users starts a new journal."""

    def __init__(self, data_dir: Path, users: Sequence[str]) -> None:
        key = hashlib.sha256("\n".join(users).encode()).hexdigest()[:16]
        self.path = data_dir / "jobs" / f"mine-{key}.done"

    def done(self) -> set[str]:
        if not self.path.exists():
            return set()
        out: set[str] = set()
        for line in self.path.read_text().splitlines():
            try:
                out.update(json.loads(line))
            except ValueError:  # a line cut off by the interruption: those users run again
                continue
        return out

    def record(self, users: Sequence[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(json.dumps(list(users)) + "\n")

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def mine_users(
    factory: sessionmaker[Session],
    user_ids: Sequence[str] | None = None,
    *,
    data_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    engine: str = "local",
    address: str | None = None,
    resume: bool = True,
    domain: str = "auto",
) -> MineCounts:
    """Mine ``user_ids`` (default: every user) and store new profile versions.

    A full run also recomputes the global transition statistics (saved under ``data_dir``);
    a run for some users reuses the saved ones, so re-mining one user stays cheap. ``engine``:
    "local" (``workers`` processes) or "ray" (a local Ray runtime with ``workers`` CPUs, default all,
    or the cluster at ``address``).
    Returns counts: mined, new_versions, skipped (done by an interrupted earlier run), failed."""
    with factory() as s:
        all_users = [u for (u,) in s.execute(select(User.id).order_by(User.id))]
        targets = list(all_users if user_ids is None else user_ids)
        unknown = sorted(set(targets) - set(all_users))
        if unknown:
            raise NotFoundError(f"unknown user(s): {', '.join(unknown[:5])}")
    journal = Journal(data_dir, targets) if data_dir is not None and user_ids is None else None
    skip = journal.done() if journal is not None and resume else set()
    if journal is not None and not resume:
        journal.finish()
    left = [u for u in targets if u not in skip]
    if skip:
        log.info("resuming an interrupted run: %d of %d users already mined", len(skip), len(targets))
        if progress:
            progress(len(skip))
    gs: GlobalStats | None = None
    everyone: pd.DataFrame | None = None  # every event, when a whole-store run reads them anyway
    if user_ids is None:
        if data_dir is not None and skip:
            gs = load_global_stats(data_dir)  # the interrupted run's, so every profile shares them
        if gs is None:
            everyone = read_events(factory)
            gs = global_stats(everyone)
            if data_dir is not None:
                p = global_stats_path(data_dir)
                p.parent.mkdir(parents=True, exist_ok=True)
                with p.open("wb") as fh:
                    pickle.dump(gs, fh)
    elif data_dir is not None:
        gs = load_global_stats(data_dir)
    batches = [left[i : i + CHUNK_USERS] for i in range(0, len(left), CHUNK_USERS)]
    total = BatchResult()
    spec = plan_spec(factory, domain)
    if engine == "ray":
        results = ray_mine(factory, batches, gs, spec, address=address, num_cpus=workers)
    elif engine == "local":
        results = _local_mine(factory, batches, gs, spec, workers, everyone)
    else:
        from core.errors import InvalidInputError

        raise InvalidInputError(f"unknown engine {engine!r}: local or ray")
    for users, result in results:
        total.add(result)
        if journal is not None:
            journal.record(users)
        if progress:
            progress(len(users))
    if journal is not None:
        journal.finish()
    return {
        "mined": total.mined,
        "new_versions": total.new_versions,
        "skipped": len(skip),
        "failed": total.failed,
    }


def _local_mine(
    factory: sessionmaker[Session],
    batches: list[list[str]],
    gs: GlobalStats | None,
    spec: PlanSpec,
    workers: int | None,
    everyone: pd.DataFrame | None = None,
) -> Iterator[tuple[list[str], BatchResult]]:
    """This process reads the events (from ``everyone`` when it holds them already), a process
    pool mines, this process stores."""
    workers = workers or min(os.cpu_count() or 1, 4)
    groups = dict(tuple(everyone.groupby(C.USER, sort=False))) if everyone is not None else {}

    def events_of(users: list[str]) -> pd.DataFrame:
        if everyone is None:
            return read_events(factory, users)
        parts = [groups[u] for u in users if u in groups]
        return pd.concat(parts) if parts else everyone.iloc[0:0]

    def jobs() -> Iterator[tuple[pd.DataFrame, list[str], GlobalStats | None, PlanSpec]]:
        for users in batches:
            yield events_of(users), users, gs, spec

    def finish(users: list[str], mined: Mined) -> tuple[list[str], BatchResult]:
        profiles, failed = mined
        return users, BatchResult(len(profiles), store_profiles(factory, profiles), failed)

    if workers > 1 and len(batches) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for users, mined in zip(batches, pool.map(_mine_chunk, jobs()), strict=True):
                yield finish(users, mined)
    else:
        for job in jobs():
            yield finish(job[1], _mine_chunk(job))
