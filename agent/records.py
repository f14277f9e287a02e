"""What is stored about recommendations: their traces (support staff's "why?"), feedback on them, and
each user's feedback history.

Every recommendation served stores its request, the facts its explanations used, the candidates
with their sources and scores, the ranker, prompt versions and model, each explanation with its
evidence and verdicts, the experiment arm and what earlier feedback hid or moved (core.models.
Recommendation). Traces of plain API calls go through the batched writer (off the request path);
a chat turn's is written at once (the next turn refers to it).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agent.context import FEEDBACK_KINDS, reactions
from agent.trace_writer import TraceWriter
from core.errors import ForbiddenError, NotFoundError, RetryLaterError
from core.models import Event, Item, Recommendation, new_id, utcnow
from retrieval.feedback import FeedbackRules

# How long a trace look-up waits for a trace another worker may still hold in its batched writer
# (that writer stores within its interval, 0.1 s by default).
TRACE_WAIT_S = 0.5
TRACE_FLUSH_S = 1.0


class Records:
    def __init__(
        self, factory: sessionmaker[Session], traces: TraceWriter | None, rules: FeedbackRules | None = None
    ) -> None:
        self.factory = factory
        self.traces = traces  # None: each trace is written inside its request
        self.rules = rules or FeedbackRules()

    def store(self, record: Recommendation, *, at_once: bool) -> None:
        """``at_once``: the caller refers to it straight away (a chat turn); else batched."""
        if self.traces is not None and not at_once:
            self.traces.submit(record)  # written within interval_s, off the request path
            return
        with self.factory() as s:
            s.add(record)
            s.commit()

    def trace(self, session: Session, recommendation_id: str) -> Recommendation:
        rec = session.get(Recommendation, recommendation_id)
        if rec is None and self.traces is not None:
            # Maybe still queued here, or in another worker's writer (stored within its interval).
            # A writer waiting for the store does not finish its flush: wait a second at most.
            self.traces.flush(timeout=TRACE_FLUSH_S)
            deadline = time.monotonic() + TRACE_WAIT_S
            while rec is None:
                session.rollback()  # a fresh snapshot: see what other workers committed since
                rec = session.get(Recommendation, recommendation_id)
                if rec is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        if rec is None and self.traces is not None and self.traces.holds(recommendation_id):
            # served by this worker, its trace waiting for the store (down or full): not a 404
            raise RetryLaterError(
                f"recommendation {recommendation_id} was served but is not stored yet (the store is "
                "unavailable); try again shortly",
                retry_after_s=2,
            )
        if rec is None:
            raise NotFoundError(f"no recommendation {recommendation_id!r}")
        return rec

    def feedback(
        self, recommendation_id: str, user_id: str | None, kind: str, item_id: str | None, reason: str | None
    ) -> str:
        """Store feedback as an event linked to the recommendation (mining and ranking learn from it)."""
        if kind not in FEEDBACK_KINDS:
            raise NotFoundError(f"unknown feedback kind {kind!r}")
        with self.factory() as s:
            rec = self.trace(s, recommendation_id)
            if user_id is not None and rec.user_id != user_id:
                raise ForbiddenError("this recommendation belongs to another user")
            if item_id is not None and item_id not in rec.items:
                raise NotFoundError(f"item {item_id!r} was not part of recommendation {recommendation_id}")
            eid = new_id()
            s.add(
                Event(
                    id=eid,
                    user_id=rec.user_id,
                    item_id=item_id or (rec.items[0] if rec.items else None),
                    kind="feedback",
                    ts=utcnow(),
                    tz_offset_min=0,
                    text=reason,
                    recommendation_id=rec.id,
                    attributes={"feedback": kind},
                )
            )
            s.commit()
        return eid

    def undo_feedback(self, user_id: str, event_id: str) -> bool:
        """Delete a feedback event the person takes back ("actually, that one was fine"); False
        when there is no such feedback of theirs (nothing was undone)."""
        with self.factory() as s:
            ev = s.get(Event, event_id)
            if ev is None or ev.user_id != user_id or ev.kind != "feedback":
                return False
            s.delete(ev)
            s.commit()
        return True

    def feedback_history(self, session: Session, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The user's reactions, newest first, each with what it does now (hidden until when, or
        counted towards its kind) and the recommendation it answered."""
        rows = session.execute(
            select(Event.id, Event.item_id, Event.attributes, Event.ts, Event.text, Event.recommendation_id)
            .add_columns(Item.category, Item.name)
            .outerjoin(Item, Item.id == Event.item_id)
            .where(Event.user_id == user_id, Event.kind == "feedback")
            .order_by(Event.ts.desc(), Event.id.desc())
            .limit(limit)
        ).all()
        now = utcnow()
        hidden = reactions(session, user_id, now, self.rules).hidden()
        return [
            {
                "event_id": eid,
                "at": ts.isoformat(),
                "kind": (attrs or {}).get("feedback"),
                "item_id": item,
                "category": category,
                "name": name,
                "recommendation_id": rec_id,
                "reason": reason,
                "effect": self._effect(item, (attrs or {}).get("feedback"), ts, category, hidden, now),
            }
            for eid, item, attrs, ts, reason, rec_id, category, name in rows
        ]

    def _effect(
        self,
        item: str | None,
        kind: str | None,
        ts: datetime,
        category: str | None,
        hidden: dict[str, Any],
        now: datetime,
    ) -> str:
        window = self.rules.hide_rejected_days
        if item in hidden and hidden[item].at == ts:
            return f"hidden from this user until {(ts + timedelta(days=window)).date().isoformat()}"
        if kind == "rejected" and ts < now - timedelta(days=window):
            return "no longer hidden (older than the hiding window)"
        if kind == "rejected" and item not in hidden:
            return "no longer hidden (accepted or clicked since)"
        return "counted towards its kind" if category else "counted for this item"

    def recent(self, session: Session, user_id: str, limit: int = 20) -> list[Recommendation]:
        return list(
            session.scalars(
                select(Recommendation)
                .where(Recommendation.user_id == user_id)
                .order_by(Recommendation.created_at.desc())
                .limit(limit)
            )
        )
