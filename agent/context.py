"""What a request needs about its user, loaded once and passed down (recommendations and chat alike).

``UserLoader.load`` reads, in one store session and one serving state: the latest profile and its
version, whether the user exists, their reactions to earlier recommendations (the feedback rules'
window), their history, offset from UTC and latest item before the request's time, their online
experiment arm, and the domain's per-profile view (places: their anchors). Nothing below the
request fetches any of it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.experiments import Assignment, ExperimentsConfig
from core.models import Event, Item, User
from domains.base import Domain
from mining import UserProfile
from retrieval.feedback import FeedbackRules, FeedbackSignals, Reaction
from retrieval.profile_store import latest_profile_and_version
from retrieval.service import PersonView, Retriever

FEEDBACK_KINDS = ("clicked", "accepted", "rejected")


@dataclass(frozen=True)
class RequestUser:
    user_id: str
    known: bool  # the store has this user (an unknown one is a cold start, or a 404 for the API)
    profile: UserProfile | None
    profile_version: int | None
    person: PersonView  # history, offset from UTC, latest item (one serving state)
    reactions: FeedbackSignals | None  # None for an unknown user
    arm: Assignment | None  # the online experiment arm
    view: Any = None  # the domain's per-profile view (places: anchors)

    @property
    def utc_offset_min(self) -> int:
        return self.person.utc_offset_min


def reactions(session: Session, user_id: str, now: datetime, rules: FeedbackRules) -> FeedbackSignals:
    """This user's reactions to recommendations, as far back as the feedback rules read (one
    indexed look-up of their feedback events, with each item's kind)."""
    rows = session.execute(
        select(Event.item_id, Event.attributes, Event.ts, Event.recommendation_id, Item.category)
        .outerjoin(Item, Item.id == Event.item_id)
        .where(Event.user_id == user_id, Event.kind == "feedback", Event.ts >= now - rules.memory)
    ).all()
    got = [
        Reaction(str(item), str((attrs or {}).get("feedback")), ts, _primary(cat), rec_id)
        for item, attrs, ts, rec_id, cat in rows
        if item and (attrs or {}).get("feedback") in FEEDBACK_KINDS
    ]
    return FeedbackSignals.of(got, now, rules)


def _primary(category: str | None) -> str | None:
    return category.split("|")[0] if category else None


class UserLoader:
    def __init__(
        self,
        factory: sessionmaker[Session],
        retriever: Retriever,
        domain: Domain,
        rules: FeedbackRules,
        experiments: ExperimentsConfig,
    ) -> None:
        self.factory = factory
        self.retriever = retriever
        self.domain = domain
        self.rules = rules
        self.experiments = experiments

    def load(self, user_id: str, when: datetime) -> RequestUser:
        with self.factory() as s:
            profile, version = latest_profile_and_version(s, user_id)
            known = s.get(User, user_id) is not None
            signals = reactions(s, user_id, when, self.rules) if known else None
        return RequestUser(
            user_id,
            known,
            profile,
            version,
            self.retriever.person(user_id, when),
            signals,
            self.experiments.assign(user_id),
            self.domain.person(profile),
        )
