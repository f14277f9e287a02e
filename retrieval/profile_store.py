"""Profiles in the store: mine users from their stored events, save versioned, read back.

The only I/O around mining (mining itself stays pure). A new version is written only when the
user's events or the miner changed since the latest one, so re-running ``mine`` is cheap and
history stays meaningful.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core import columns as C
from core.events_frame import events_frame
from core.models import Profile, User
from core.state_changes import record_change
from mining import GlobalStats, UserProfile, build_profile, global_stats

CHUNK_USERS = 64


def save_profile(session: Session, profile: UserProfile) -> int:
    """Store ``profile`` as the user's next version unless nothing changed; returns the version."""
    latest = session.execute(
        select(Profile).where(Profile.user_id == profile.user_id).order_by(Profile.version.desc()).limit(1)
    ).scalar_one_or_none()
    if (
        latest is not None
        and latest.n_events == profile.n_events
        and latest.last_event_ts == profile.last_event_ts
        and latest.miner_version == profile.miner_version
    ):
        return latest.version
    version = (latest.version if latest else 0) + 1
    d = profile.to_dict()
    session.add(
        Profile(
            user_id=profile.user_id,
            version=version,
            miner_version=profile.miner_version,
            n_events=profile.n_events,
            last_event_ts=profile.last_event_ts,
            facts=d["facts"],
            text=profile.text,
            data={"text_fact_ids": profile.text_fact_ids},
        )
    )
    session.flush()
    return version


def _from_row(row: Profile) -> UserProfile:
    return UserProfile.from_dict(
        {
            "user_id": row.user_id,
            "facts": row.facts,
            "text": row.text,
            "n_events": row.n_events,
            "last_event_ts": row.last_event_ts,
            "miner_version": row.miner_version,
            "text_fact_ids": (row.data or {}).get("text_fact_ids", []),
        }
    )


def latest_profile(session: Session, user_id: str) -> UserProfile | None:
    row = session.execute(
        select(Profile).where(Profile.user_id == user_id).order_by(Profile.version.desc()).limit(1)
    ).scalar_one_or_none()
    return _from_row(row) if row else None


def latest_profile_and_version(session: Session, user_id: str) -> tuple[UserProfile | None, int | None]:
    """The latest profile and its version in one query (what every request reads)."""
    row = session.execute(
        select(Profile).where(Profile.user_id == user_id).order_by(Profile.version.desc()).limit(1)
    ).scalar_one_or_none()
    return (_from_row(row), row.version) if row else (None, None)


def latest_profile_texts(session: Session, user_ids: Sequence[str] | None = None) -> dict[str, str]:
    """Each user's latest profile text (every user with a profile when ``user_ids`` is None)."""
    latest = select(Profile.user_id, func.max(Profile.version).label("v")).group_by(Profile.user_id)
    if user_ids is not None:
        latest = latest.where(Profile.user_id.in_(list(user_ids)))
    sub = latest.subquery()
    rows = session.execute(
        select(Profile.user_id, Profile.text).join(
            sub, (Profile.user_id == sub.c.user_id) & (Profile.version == sub.c.v)
        )
    ).all()
    return {str(u): t for u, t in rows}


def latest_profile_version(session: Session, user_id: str) -> int | None:
    return session.scalar(select(func.max(Profile.version)).where(Profile.user_id == user_id))


def profile_versions(session: Session, user_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Profile.version, Profile.created_at, Profile.n_events, Profile.miner_version)
        .where(Profile.user_id == user_id)
        .order_by(Profile.version)
    ).all()
    return [
        {
            "version": r.version,
            "created_at": r.created_at.isoformat(),
            "n_events": r.n_events,
            "miner": r.miner_version,
        }
        for r in rows
    ]


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
            from core.errors import NotFoundError

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
