"""A conversation's state: what the user wants now, what they ruled out, what was shown.

Kept in ``Conversation.state`` (JSON) and read back every turn, so constraints accumulate and can
be revised ("actually, closer", "forget the museum idea"), and "the second one" resolves to what
was really shown. ``apply`` turns one verified intent into the next state; it is pure apart from
the grounder, which maps words to the catalog's categories by embedding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from agent.chat.intent import TurnIntent, said
from retrieval.grounding import CategoryGrounder, CategoryMatch
from retrieval.types import RequestContext

NEAR_KM = 2.0
MIN_KM = 0.3
# Local clock time a named part of the day stands for.
WHEN_HOURS = {"morning": 9.0, "lunch": 12.5, "afternoon": 15.0, "evening": 19.0, "night": 22.0}


@dataclass
class ShownItem:
    item_id: str
    label: str
    category: str | None = None


@dataclass
class ChatState:
    wish: str = ""
    wish_categories: list[dict[str, Any]] = field(default_factory=list)  # CategoryMatch dicts
    avoid: list[str] = field(default_factory=list)
    avoid_categories: list[dict[str, Any]] = field(default_factory=list)
    max_km: float | None = None
    new_only: bool = False
    when: str = "now"
    rejected: list[str] = field(default_factory=list)  # item ids ruled out in this conversation
    shown: list[ShownItem] = field(default_factory=list)
    last_recommendation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ChatState:
        d = dict(d or {})
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["shown"] = [ShownItem(**s) for s in known.get("shown") or [] if isinstance(s, dict)]
        return cls(**known)

    @property
    def include_kinds(self) -> list[str]:
        return [m["category"] for m in self.wish_categories]

    @property
    def exclude_kinds(self) -> list[str]:
        return [m["category"] for m in self.avoid_categories]

    def summary(self, kinds: bool = True) -> str:
        """One line for prompts and templates: the search as it stands. ``kinds=False`` leaves out
        the grounded categories, for text a user reads (a category is not a place shown)."""
        bits = []
        if self.wish:
            bits.append(f'wants "{self.wish}"')
        if kinds and self.include_kinds:
            bits.append("kinds: " + ", ".join(self.include_kinds))
        if self.avoid:
            bits.append("avoiding " + ", ".join(self.avoid))
        if self.max_km is not None:
            bits.append(f"within {self.max_km:g} km")
        if self.new_only:
            bits.append("only places new to them")
        if self.when != "now":
            bits.append(f"for {self.when}")
        return "; ".join(bits) or "nothing specific yet"


def _distance(current: float | None, op: str) -> float | None:
    if op == "near":
        return NEAR_KM if current is None else min(current, NEAR_KM)
    if op == "closer":
        return max(MIN_KM, (current if current is not None else 2 * NEAR_KM) / 2)
    if op == "farther":
        return None if current is None else current * 2
    if op == "any":
        return None
    return current


def apply(state: ChatState, intent: TurnIntent, grounder: CategoryGrounder | None) -> ChatState:
    """The state after a (verified) recommend or reject turn."""
    new = replace(
        state,
        avoid=list(state.avoid),
        avoid_categories=list(state.avoid_categories),
        rejected=list(state.rejected),
    )
    for f in intent.forget:
        if new.wish and said(f, new.wish):
            new.wish, new.wish_categories = "", []
        new.avoid = [a for a in new.avoid if not said(f, a)]
    for a in intent.avoid:
        if a.lower() not in (x.lower() for x in new.avoid):
            new.avoid.append(a)
    if intent.forget or intent.avoid:
        new.avoid_categories = _ground_avoid(new.avoid, grounder)
    if intent.wish or intent.kinds:
        new.wish = intent.wish or ", ".join(intent.kinds)
        new.wish_categories = _ground_wish(new.wish, intent.kinds, grounder)
    banned = set(new.exclude_kinds)
    new.wish_categories = [m for m in new.wish_categories if m["category"] not in banned]
    new.max_km = _distance(new.max_km, intent.distance)
    if intent.new_places != "same":
        new.new_only = intent.new_places == "yes"
    if intent.when != "now" or intent.wish:
        new.when = intent.when
    return new


def _ground_wish(wish: str, kinds: list[str], grounder: CategoryGrounder | None) -> list[dict[str, Any]]:
    if grounder is None:
        return []
    return [m.to_dict() for m in grounder.ground_wish(wish, kinds)]


def _ground_avoid(avoid: list[str], grounder: CategoryGrounder | None) -> list[dict[str, Any]]:
    if grounder is None:
        return []
    seen: dict[str, CategoryMatch] = {}
    for phrase in avoid:
        for m in grounder.ground_exclusion(phrase):
            seen.setdefault(m.category, CategoryMatch(m.category, m.similarity, f"{m.via}:{phrase}"))
    return [m.to_dict() for m in seen.values()]


def when_time(now: datetime, when: str, utc_offset_min: int) -> datetime:
    """The moment a named time means, in the user's local clock (``now`` is tz-aware)."""
    if when == "now":
        return now
    local = now + timedelta(minutes=utc_offset_min)
    day = local
    if when == "tomorrow":
        return now + timedelta(days=1)
    if when == "weekend":
        ahead = (5 - local.weekday()) % 7
        day = local + timedelta(days=ahead)
        hours = 13.0
    else:
        hours = WHEN_HOURS[when]
    target = day.replace(hour=int(hours), minute=int(hours % 1 * 60), second=0, microsecond=0)
    if when != "weekend" and target < local - timedelta(hours=1):
        target += timedelta(days=1)  # "this morning" said in the evening means tomorrow morning
    return target - timedelta(minutes=utc_offset_min)


def to_context(
    state: ChatState, now: datetime, lat: float | None, lon: float | None, utc_offset_min: int = 0
) -> RequestContext:
    return RequestContext(
        time=when_time(now, state.when, utc_offset_min),
        lat=lat,
        lon=lon,
        text=state.wish or None,
        include_kinds=tuple(state.include_kinds),
        exclude_kinds=tuple(state.exclude_kinds),
        max_distance_km=state.max_km,
        exclude_visited=state.new_only,
        exclude_items=tuple(state.rejected),
    )
