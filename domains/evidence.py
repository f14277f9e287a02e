"""What links a shown item to this person: the evidence its explanation may use, with values.

For each item shown, the facts of the person's profile that actually concern it (a repeated route
that ends there, a time-slot habit at that very item or of its kind when the request falls in that
slot, a drift toward its kind, the hours and days they are usually active when the request matches
them, kinds they accepted before) and the item's own attributes as this person sees them (how often
they had it, whether people go to it from their latest item, whether similar people do). Each piece
carries the values a sentence may state: numbers, days, parts of the day, kinds and topics. The
LLM explains from these and nothing else; the faithfulness checker (agent/llm/faithfulness.py)
holds its text against them; the template phrases them when the LLM cannot.

The pieces are built by *rules* in an order (strongest first); a domain lists its rules, adding
its own (a place's distance and the areas it is near; a film's genres the person rates highly).
Profile facts are cited by their ids; the item's own attributes by ``item.*`` ids, derived from the
same history at request time and stored with the explanation in the trace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from core.nouns import ITEMS, Nouns
from domains.naming import visit_count
from mining import Fact, UserProfile
from mining.habits import SLOTS
from retrieval.types import Candidate

MAX_EVIDENCE = 4
MIN_EVIDENCE = 2
SLOT_NAMES = {sid: label.split(" (")[0] for sid, label, _ in SLOTS}  # "weekday middays"
# Parts of the day a time-slot habit speaks for (what an explanation of it may say).
SLOT_PARTS = {
    "wd_morning": {"morning", "weekday"},
    "wd_midday": {"midday", "lunch", "noon", "weekday"},
    "wd_evening": {"evening", "weekday", "after work"},
    "we_day": {"weekend", "daytime", "saturday", "sunday"},
    "night": {"night", "late", "tonight"},
}
GENERIC = frozenset(
    {"item.new", "item.similar_people", "item.others_next", "item.distance", "item.popular_now"}
)


@dataclass(frozen=True)
class Evidence:
    """One reason an item fits, in words and in checkable values."""

    id: str  # a profile fact id, or item.<what> for the item's own attributes
    text: str  # one plain sentence, values included
    numbers: frozenset[str] = frozenset()
    days: frozenset[str] = frozenset()
    parts: frozenset[str] = frozenset()  # parts of the day / week it speaks for
    kinds: frozenset[str] = frozenset()  # kinds of item it names
    topics: frozenset[str] = frozenset()  # visits, route, near, habit, trend, time, popular, similar, new

    def to_dict(self) -> dict[str, Any]:
        # by hand, not dataclasses.asdict: its deep copies were a tenth of a template request
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in d.items() if v}


@dataclass
class ItemEvidence:
    """All the evidence for one shown item, strongest first, and what is true of the item itself
    (its own numbers and topics: "you have been here 3 times", "0.4 km away", "new to you")."""

    item_id: str
    kind: str
    category: str | None
    visits: int
    evidence: list[Evidence] = field(default_factory=list)
    own_numbers: frozenset[str] = frozenset()
    own_topics: frozenset[str] = frozenset()
    own_kinds: frozenset[str] = frozenset()  # kinds the item itself is of (a film's genres)
    attrs: dict[str, Any] = field(default_factory=dict)  # shown in the trace (distance_km, year)

    def by_id(self) -> dict[str, Evidence]:
        return {e.id: e for e in self.evidence}

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "kind": self.kind,
            "visits": self.visits,
            **self.attrs,
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True)
class RequestMoment:
    """The request's local time and the person's latest item (what "now" and "from here" mean)."""

    local: datetime  # local wall-clock time of the request
    last_item: str | None = None
    last_kind: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)  # the request's domain arguments


@dataclass(frozen=True)
class Phrases:
    """How a domain words each neutral piece of evidence ({item}, {items}, {events} are its nouns)."""

    had: str = "You have {had} it {times}."
    route: str = "You often go from {origin} to it ({count} times)."
    own_route: str = "You have gone straight from your latest {item}{frm} to it {times}."
    slot_item: str = "On {label} you often come to this very {item} ({k} of {n} {events})."
    slot_kind: str = "On {label} you usually go for {kind} {items}."
    next_kind: str = "After {after} (your latest {item}), {kind} {items} are a usual next step."
    rising: str = "Lately you go for {what} more (up from {early}% to {recent}% of your {events})."
    this_item: str = "this {item}"
    usual_hour: str = "Most of your {events} here were around this time of day."
    others_next: str = "Other people often go for it after {last}."
    similar: str = "People who like the {items} you like also like this one."
    new: str = "It is new to you."

    def say(self, template: str, nouns: Nouns, **values: Any) -> str:
        return getattr(self, template).format(
            item=nouns.item, items=nouns.items, events=nouns.events, had=nouns.had, **values
        )


@dataclass
class Scene:
    """What every rule reads: the person's usable facts, the item, the moment, names of other items."""

    facts: dict[str, Fact]
    c: Candidate
    moment: RequestMoment
    name_of: Callable[[str], str | None]
    nouns: Nouns = ITEMS
    person: Any = None  # the domain's per-profile view (places: anchors)
    phrases: Phrases = Phrases()
    found: list[Evidence] = field(default_factory=list)

    def say(self, template: str, **values: Any) -> str:
        return self.phrases.say(template, self.nouns, **values)

    @property
    def visits(self) -> int:
        return visit_count(self.c)

    @property
    def last_kind(self) -> str | None:
        m = self.moment
        return m.last_kind or (self.name_of(m.last_item) if m.last_item else None)

    def fact(self, fid: str) -> Fact | None:
        f = self.facts.get(fid)
        return f if f is not None and isinstance(f.value, dict) else None


Rule = Callable[[Scene], Evidence | list[Evidence] | None]


def usable_facts(profile: UserProfile | None) -> dict[str, Fact]:
    return {f.id: f for f in (profile.facts if profile else []) if f.sufficient}


def num(x: float | int) -> str:
    return f"{x:.1f}" if isinstance(x, float) and not float(x).is_integer() else str(int(x))


def slot_of(local: datetime) -> str | None:
    return _slot(local.weekday(), local.hour)


@lru_cache(maxsize=256)
def _slot(weekday: int, hour: int) -> str | None:
    """The habit slot of a weekday and hour (168 answers, computed once each: every candidate of
    every request asks)."""
    for sid, _, pred in SLOTS:
        if bool(pred(weekday, hour)):
            return sid
    return None


def gather(scene: Scene, rules: Sequence[Rule]) -> list[Evidence]:
    for rule in rules:
        got = rule(scene)
        if isinstance(got, Evidence):
            scene.found.append(got)
        elif got:
            scene.found.extend(got)
    return strongest(scene.found)


def strongest(items: list[Evidence]) -> list[Evidence]:
    """One piece per id (the first, strongest): what is about this person first, at most
    MAX_EVIDENCE; generic signals (new to you, how far, what other people do) only while fewer
    than MIN_EVIDENCE personal ones exist. A small model writes better from a few facts, and
    words borrowed from a fact it did not choose are what the checker rejects most."""
    seen: set[str] = set()
    unique = [e for e in items if not (e.id in seen or seen.add(e.id))]  # type: ignore[func-returns-value]
    personal = [e for e in unique if e.id not in GENERIC][:MAX_EVIDENCE]
    fill = [e for e in unique if e.id in GENERIC][: max(0, MIN_EVIDENCE - len(personal))]
    return personal + fill
