"""A conversation's state: what the user wants now, what they ruled out, what was shown.

Kept in ``Conversation.state`` (JSON) and read back every turn, so constraints accumulate and can
be revised ("actually, closer", "forget the museum idea"), and "the second one" resolves to what
was really shown. ``apply`` turns one verified intent into the next state; it is pure apart from
the grounder, which maps words to the catalog's kinds by embedding. The domain's own arguments
(a distance for places) live in ``args``, changed by the domain's chat arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from agent.chat.intent import TurnIntent, said
from core.clock import from_local, local_time
from domains.chat_args import ChatArgument
from retrieval.grounding import CategoryGrounder, CategoryMatch
from retrieval.types import RequestContext

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
    # the wished kinds' family (CategoryMatch dicts): fills a list the wished kinds leave thin
    related_categories: list[dict[str, Any]] = field(default_factory=list)
    avoid: list[str] = field(default_factory=list)
    avoid_categories: list[dict[str, Any]] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)  # the domain's ({"max_distance_km": 2.0})
    new_only: bool = False
    when: str = "now"
    rejected: list[str] = field(default_factory=list)  # item ids ruled out in this conversation
    # feedback this conversation stored for the person ({"event_id", "item_id", "label"}): listed
    # in the reply when written, and what "actually, that one was fine" can take back
    written: list[dict[str, Any]] = field(default_factory=list)
    shown: list[ShownItem] = field(default_factory=list)
    last_recommendation: str | None = None
    focus: str | None = None  # the shown item the conversation is about (the one just explained)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ChatState:
        d = dict(d or {})
        if d.get("max_km") is not None:  # stored before the domain arguments had their own place
            d.setdefault("args", {})["max_distance_km"] = d["max_km"]
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["shown"] = [ShownItem(**s) for s in known.get("shown") or [] if isinstance(s, dict)]
        return cls(**known)

    @property
    def include_kinds(self) -> list[str]:
        return [m["category"] for m in self.wish_categories]

    @property
    def exclude_kinds(self) -> list[str]:
        return [m["category"] for m in self.avoid_categories]

    def summary(self, kinds: bool = True, args: Sequence[str] = ()) -> str:
        """One line for prompts and templates: the search as it stands. ``kinds=False`` leaves out
        the grounded kinds, for text a user reads (a kind is not an item shown); ``args``: the
        domain's arguments in words ("within 2 km")."""
        bits = []
        if self.wish:
            bits.append(f'wants "{self.wish}"')
        if kinds and self.include_kinds:
            bits.append("kinds: " + ", ".join(self.include_kinds))
        if self.avoid:
            bits.append("avoiding " + ", ".join(self.avoid))
        bits.extend(args)
        if self.new_only:
            bits.append("only ones new to them")
        if self.when != "now":
            bits.append(f"for {self.when}")
        return "; ".join(bits) or "nothing specific yet"


def apply(
    state: ChatState,
    intent: TurnIntent,
    grounder: CategoryGrounder | None,
    domain_args: Sequence[ChatArgument] = (),
) -> ChatState:
    """The state after a (verified) recommend or reject turn."""
    new = replace(
        state,
        avoid=list(state.avoid),
        avoid_categories=list(state.avoid_categories),
        rejected=list(state.rejected),
        args=dict(state.args),
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
    new.related_categories = (
        [m.to_dict() for m in grounder.related(new.include_kinds, banned)]
        if grounder is not None and new.wish_categories
        else []
    )
    for arg in domain_args:
        if arg.name in intent.args:
            new.args = arg.apply(new.args, intent.args[arg.name])
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
    local = local_time(now, utc_offset_min)
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
    return from_local(target, utc_offset_min)


def to_context(
    state: ChatState, now: datetime, args: dict[str, Any], utc_offset_min: int = 0, domain: Any = None
) -> RequestContext:
    """The search as a request. ``args``: the turn's own domain arguments (places: where the
    person is); the state's (a distance) join them. Only "somewhere new" excludes what the person
    had; otherwise the domain's default applies (films already rated are never shown)."""
    merged = {**state.args, **args}
    if domain is not None:
        merged = domain.request_args(**merged)
    return RequestContext(
        time=when_time(now, state.when, utc_offset_min),
        text=state.wish or None,
        include_kinds=tuple(state.include_kinds),
        exclude_kinds=tuple(state.exclude_kinds),
        related_kinds=tuple(m["category"] for m in state.related_categories),
        widen_if_thin=True,  # a thin list is filled from further away, and the reply says so
        exclude_visited=True if state.new_only else None,
        exclude_items=tuple(state.rejected),
        args=merged,
    )
