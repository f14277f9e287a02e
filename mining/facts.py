"""The profile's vocabulary: facts with stable ids, and the profile that holds them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

MINER_VERSION = "2.0"


@dataclass
class Fact:
    """One thing we know about a user, with the evidence behind it.

    ``id`` is stable across re-mining (explanations cite it); ``support`` counts the events behind
    it; ``confidence`` is 0 for "not enough data" facts."""

    id: str
    kind: str  # rhythm | timeseries | spatial | habit | transition | drift | sentiment | data
    statement: str
    value: Any = None
    support: int = 0
    confidence: float = 0.0

    @property
    def sufficient(self) -> bool:
        return self.confidence > 0


@dataclass
class UserProfile:
    user_id: str
    facts: list[Fact]
    text: str
    n_events: int
    last_event_ts: datetime | None
    miner_version: str = MINER_VERSION
    text_fact_ids: list[list[str]] = field(default_factory=list)  # fact ids behind each sentence
    # "<count>@<latest time>" of the reactions to recommendations mined (they are not events of
    # the profile, but a new one changes its feedback facts)
    reactions: str = ""

    def fact(self, fact_id: str) -> Fact | None:
        return next((f for f in self.facts if f.id == fact_id), None)

    @property
    def fact_ids(self) -> set[str]:
        return {f.id for f in self.facts}

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "facts": [asdict(f) for f in self.facts],
            "text": self.text,
            "n_events": self.n_events,
            "last_event_ts": self.last_event_ts.isoformat() if self.last_event_ts else None,
            "miner_version": self.miner_version,
            "text_fact_ids": self.text_fact_ids,
            "reactions": self.reactions,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserProfile:
        last = d.get("last_event_ts")
        return cls(
            user_id=str(d["user_id"]),
            facts=[Fact(**f) for f in d.get("facts", [])],
            text=d.get("text", ""),
            n_events=int(d.get("n_events", 0)),
            last_event_ts=datetime.fromisoformat(last) if isinstance(last, str) else last,
            miner_version=d.get("miner_version", MINER_VERSION),
            text_fact_ids=[list(x) for x in d.get("text_fact_ids", [])],
            reactions=str(d.get("reactions", "")),
        )


def insufficient(fact_id: str, kind: str, what: str, support: int, need: str) -> Fact:
    """A "not enough data" fact: valid, honest, and never cited as evidence."""
    return Fact(
        id=fact_id,
        kind=kind,
        statement=f"Not enough data for {what} ({need}).",
        value={"status": "insufficient", "need": need},
        support=support,
        confidence=0.0,
    )
