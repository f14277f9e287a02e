"""Profiles as people and support staff read them: the text with areas and items named for the
person, the versions stored, and the domain's plots."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.errors import NotFoundError
from core.events_frame import events_frame
from core.models import User
from domains.base import Domain
from mining import UserProfile
from retrieval.profile_store import latest_profile, profile_versions
from retrieval.service import Retriever


class Profiles:
    def __init__(self, domain: Domain, retriever: Retriever) -> None:
        self.domain = domain
        self.retriever = retriever

    def readable(self, profile: UserProfile | None) -> str:
        """The profile's text as the person reads it: no ids, places and areas named for them."""
        if profile is None or not profile.text:
            return ""
        return self.domain.readable_profile(profile.text, profile, self.retriever.kind_of)

    def view(self, session: Session, user_id: str) -> dict[str, Any]:
        """``text`` as the person reads it, ``text_raw`` and the facts as mined (with the miner's
        ids, for support staff), the versions stored and the plots."""
        p = latest_profile(session, user_id)
        if p is None:
            if session.get(User, user_id) is None:
                raise NotFoundError(f"no user {user_id!r}")
            raise NotFoundError(f"no profile for user {user_id!r} yet: run `chronotope mine`")
        return {
            **p.to_dict(),
            "text": self.readable(p),
            "text_raw": p.text,
            "versions": profile_versions(session, user_id),
            "plots": [f"/v1/users/{user_id}/profile/plots/{n}.png" for n in self.domain.plots()],
        }

    def plot(self, session: Session, user_id: str, name: str) -> bytes:
        if name not in self.domain.plots():
            raise NotFoundError(f"no plot {name!r}; have {', '.join(self.domain.plots())}")
        df = events_frame(session, [user_id])
        if df.empty:
            raise NotFoundError(f"no events for user {user_id!r}")
        return self.domain.render_plot(name, df, user_id)
