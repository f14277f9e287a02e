"""Mining runs over the store: read users' events, mine them with the pure ``mining`` functions,
save new profile versions (``retrieval.profile_store``) and record the state change servers follow.

A batch job, not part of serving: ``chronotope mine`` runs it for everyone, the API's background
miner (``jobs.background_mining``) for the users whose events just arrived.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.errors import NotFoundError
from core.events_frame import events_frame
from core.models import User
from core.state_changes import record_change
from mining import GlobalStats, UserProfile, build_profile, global_stats
from retrieval.profile_store import latest_profile_version, save_profile

CHUNK_USERS = 64


def global_stats_path(data_dir: Path) -> Path:
    return data_dir / "models" / "global_stats.pkl"


def load_global_stats(data_dir: Path) -> GlobalStats | None:
    p = global_stats_path(data_dir)
    if not p.exists():
        return None
    with p.open("rb") as fh:
        gs = pickle.load(fh)
    return gs if isinstance(gs, GlobalStats) else None


def _mine_chunk(args: tuple[pd.DataFrame, list[str], GlobalStats | None]) -> list[UserProfile]:
    df, users, gs = args
    groups = dict(tuple(df.groupby(C.USER, sort=False))) if len(df) else {}
    empty = df.iloc[0:0]
    return [build_profile(groups.get(u, empty), u, global_stats=gs) for u in users]


def mine_users(
    factory: sessionmaker[Session],
    user_ids: Sequence[str] | None = None,
    *,
    data_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> dict[str, int]:
    """Mine ``user_ids`` (default: every user) and store new profile versions.

    A full run also recomputes the global transition statistics (saved under ``data_dir``);
    a run for some users reuses the saved ones, so re-mining one user stays cheap.
    Returns counts: mined, new_versions."""
    with factory() as s:
        all_users = [u for (u,) in s.execute(select(User.id).order_by(User.id))]
        targets = list(all_users if user_ids is None else user_ids)
        unknown = sorted(set(targets) - set(all_users))
        if unknown:
            raise NotFoundError(f"unknown user(s): {', '.join(unknown[:5])}")
        df = events_frame(s, None if user_ids is None else targets)
    gs: GlobalStats | None = None
    if user_ids is None:
        gs = global_stats(df)
        if data_dir is not None:
            p = global_stats_path(data_dir)
            p.parent.mkdir(parents=True, exist_ok=True)
            with p.open("wb") as fh:
                pickle.dump(gs, fh)
    elif data_dir is not None:
        gs = load_global_stats(data_dir)
    workers = workers or min(os.cpu_count() or 1, 4)
    chunks = [targets[i : i + CHUNK_USERS] for i in range(0, len(targets), CHUNK_USERS)]
    by_user = df.set_index(C.USER, drop=False)
    jobs = [(by_user.loc[by_user.index.isin(c)].reset_index(drop=True), c, gs) for c in chunks]
    new_versions = 0
    mined = 0

    def store(profiles: list[UserProfile]) -> None:
        nonlocal new_versions, mined
        with factory() as s:
            changed = []
            for p in profiles:
                before = latest_profile_version(s, p.user_id)
                if save_profile(s, p) != before:
                    new_versions += 1
                    changed.append(p.user_id)
            record_change(s, "profiles", changed)  # servers re-read what depends on the text
            s.commit()
        mined += len(profiles)
        if progress:
            progress(len(profiles))

    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for profiles in pool.map(_mine_chunk, jobs):
                store(profiles)
    else:
        for job in jobs:
            store(_mine_chunk(job))
    return {"mined": mined, "new_versions": new_versions}
