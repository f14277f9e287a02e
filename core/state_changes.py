"""The store's state version: what API workers follow to serve every write (core.models.StateChange).

A writer calls ``record_change`` inside the transaction that changes events or users; each worker's
follower reads ``latest_seq`` every poll and folds in the users named by ``changes_since``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import StateChange


@dataclass(frozen=True)
class Changes:
    """What changed after a version: the newest seq and the users to refresh (None: too many to
    name one by one, rebuild everything)."""

    seq: int
    user_ids: frozenset[str] | None


def record_change(session: Session, kind: str, user_ids: Iterable[str]) -> None:
    """Add a change row to the caller's transaction (committed with the write it describes)."""
    users = sorted({str(u) for u in user_ids})
    if users:
        session.add(StateChange(kind=kind, user_ids=users))


def latest_seq(session: Session) -> int:
    return int(session.scalar(select(func.max(StateChange.seq))) or 0)


def changes_since(session: Session, seq: int, *, max_users: int) -> Changes:
    """The users changed after ``seq``; ``user_ids`` is None beyond ``max_users`` (a bulk load:
    cheaper to rebuild than to patch)."""
    rows = session.execute(
        select(StateChange.seq, StateChange.user_ids).where(StateChange.seq > seq).order_by(StateChange.seq)
    ).all()
    if not rows:
        return Changes(seq, frozenset())
    users: set[str] = set()
    for _, ids in rows:
        users.update(str(u) for u in ids or [])
        if len(users) > max_users:
            return Changes(int(rows[-1][0]), None)
    return Changes(int(rows[-1][0]), frozenset(users))
