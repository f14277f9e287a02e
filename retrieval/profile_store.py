"""Profiles in the store: save versioned, read back (mining runs live in ``jobs.mine``).

A new version is written only when the user's events or the miner changed since the latest one,
so re-running ``mine`` is cheap and history stays meaningful.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Profile
from mining import UserProfile


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
        and (latest.data or {}).get("reactions", "") == profile.reactions
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
            data={"text_fact_ids": profile.text_fact_ids, "reactions": profile.reactions},
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
            "reactions": (row.data or {}).get("reactions", ""),
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
