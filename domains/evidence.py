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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from core.nouns import ITEMS, Nouns
from domains.naming import a, visit_count, visits_phrase
from mining import Fact, UserProfile
from mining.feedback import category_fact_id
from mining.habits import SLOTS
from mining.rhythm import DAYS
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
    at_request_place: bool = False  # the request gave the person's whereabouts (places)


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
    wd, h = local.weekday(), local.hour
    for sid, _, pred in SLOTS:
        if bool(pred(wd, h)):
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


# -- the domain-neutral rules, in the order of strength ------------------------------------------


def had_before(s: Scene) -> Evidence | None:
    if not s.visits:
        return None
    return Evidence(
        "item.visits",
        s.say("had", times=visits_phrase(s.visits)),
        frozenset({str(s.visits)}),
        topics=frozenset({"visits"}),
    )


def route_to_it(s: Scene) -> Evidence | None:
    """A repeated route of theirs that ends at this item, else their own steps from the latest one."""
    routes = s.fact("trans.places")
    for r in routes.value.get("top_routes", []) if routes else []:
        if str(r.get("to")) == s.c.item_id and r.get("count"):
            origin = s.name_of(str(r.get("from"))) or f"another of your {s.nouns.items}"
            return Evidence(
                "trans.places",
                s.say("route", origin=a(origin), count=r["count"]),
                frozenset({str(r["count"])}),
                kinds=frozenset({origin}),
                topics=frozenset({"route", "visits"}),
            )
    own = round(s.c.features.get("user_trans_count", 0))
    if not own:
        return None
    last = s.last_kind
    frm = f" ({a(last)})" if last else ""
    return Evidence(
        "item.route",
        s.say("own_route", frm=frm, times=visits_phrase(own)),
        frozenset({str(own)}),
        kinds=frozenset({last} if last else set()),
        topics=frozenset({"route"}),
    )


# (scene, the habit's fact, its slot's words, parts of the day) -> a domain's further reading of a
# habit in the request's slot (places: the area it is usually in)
SlotExtra = Callable[[Scene, Fact, str, frozenset[str]], Evidence | None]


def slot_habits(extra: SlotExtra | None = None) -> Rule:
    def rule(s: Scene) -> list[Evidence]:
        return slot_habit(s, extra)

    return rule


def slot_habit(s: Scene, extra: SlotExtra | None = None) -> list[Evidence]:
    """A time-slot habit at this very item, or of its kind (else the domain's ``extra``) when the
    request falls in that slot."""
    out = []
    now = slot_of(s.moment.local)
    for sid, label in SLOT_NAMES.items():
        f = s.fact(f"habit.{sid}")
        if f is None:
            continue
        v = f.value
        parts = frozenset(SLOT_PARTS.get(sid, set()))
        if str(v.get("item")) == s.c.item_id and v.get("item_share"):
            n_slot = int(v.get("events", 0))
            k = round(float(v["item_share"]) * n_slot)
            out.append(
                Evidence(
                    f.id,
                    s.say("slot_item", label=label, k=k, n=n_slot),
                    frozenset({str(k), str(n_slot)}),
                    parts=parts,
                    topics=frozenset({"habit", "visits"}),
                )
            )
        elif sid == now and s.c.category and v.get("category") == s.c.category:
            out.append(
                Evidence(
                    f.id,
                    s.say("slot_kind", label=label, kind=s.c.category),
                    parts=parts,
                    kinds=frozenset({s.c.category}),
                    topics=frozenset({"habit"}),
                )
            )
        elif sid == now and extra is not None and (more := extra(s, f, label, parts)) is not None:
            out.append(more)
    return out


def usual_next(s: Scene) -> Evidence | None:
    nxt = s.fact("trans.next")
    if nxt is None or not s.c.category:
        return None
    cats = [str(x[0]) for x in nxt.value.get("next", [])]
    after = str(nxt.value.get("after", ""))
    if s.c.category not in cats or not after:
        return None
    return Evidence(
        "trans.next",
        s.say("next_kind", after=a(after), kind=s.c.category),
        kinds=frozenset({after, s.c.category}),
        topics=frozenset({"route"}),
    )


def rising_interest(s: Scene) -> Evidence | None:
    drift = s.fact("drift.interests")
    kinds = set(s.c.kinds) | ({s.c.category} if s.c.category else set())
    for e in drift.value.get("emerging", []) if drift else []:
        key = str(e.get("key"))
        if key == s.c.item_id or key in kinds:
            what = s.say("this_item") if key == s.c.item_id else f"{key} {s.nouns.items}"
            early, recent = round(100 * float(e["early"])), round(100 * float(e["recent"]))
            return Evidence(
                "drift.interests",
                s.say("rising", what=what, early=early, recent=recent),
                frozenset({str(early), str(recent)}),
                kinds=frozenset({key} if key != s.c.item_id else set()),
                topics=frozenset({"trend"}),
            )
    return None


def active_now(s: Scene) -> list[Evidence]:
    out = []
    peaks = s.fact("rhythm.peak_hours")
    hour = s.moment.local.hour + s.moment.local.minute / 60
    for p in peaks.value.get("peaks", [])[:2] if peaks else []:
        if min(abs(hour - p), 24 - abs(hour - p)) <= 1.0:
            out.append(
                Evidence(
                    "rhythm.peak_hours",
                    f"You are most active around {int(p):02d}:00, close to now.",
                    frozenset({f"{int(p):02d}:00", str(int(p))}),
                    topics=frozenset({"time"}),
                )
            )
            break
    days = s.fact("rhythm.peak_days")
    if days is not None:
        top = [DAYS[int(d)] for d in days.value.get("top_days", [])[:2]]
        today = DAYS[s.moment.local.weekday()]
        if today in top:
            out.append(
                Evidence(
                    "rhythm.peak_days",
                    f"{today} is one of your busiest days.",
                    days=frozenset({today}),
                    topics=frozenset({"time"}),
                )
            )
    return out


def liked_kind(s: Scene) -> Evidence | None:
    """ "You accepted 3 of 5 Coffee Shop suggestions." when they accepted more of that kind than
    they rejected (mining.feedback); a kind they mostly reject is never offered as a reason."""
    category = s.c.category
    fact = s.facts.get(category_fact_id(category)) if category else None
    v = fact.value if fact is not None and isinstance(fact.value, dict) else None
    if fact is None or v is None or not v.get("accepted", 0) > v.get("rejected", 0):
        return None
    got, m = int(v["accepted"]), int(v["shown_with_reaction"])
    return Evidence(
        fact.id,
        f"You accepted {got} of {m} {category} suggestions.",
        frozenset({str(got), str(m)}),
        kinds=frozenset({str(category)}),
        topics=frozenset({"feedback"}),
    )


def usual_hour(s: Scene) -> Evidence | None:
    if s.visits >= 2 and s.c.features.get("user_hour_affinity_share", 0) >= 0.5:
        return Evidence(
            "item.hour",
            s.say("usual_hour"),
            topics=frozenset({"time", "visits"}),
        )
    return None


def others_next(s: Scene) -> Evidence | None:
    last = s.last_kind
    if s.c.features.get("global_trans_prob", 0) >= 0.05 and last:
        return Evidence(
            "item.others_next",
            s.say("others_next", last=a(last)),
            kinds=frozenset({last}),
            topics=frozenset({"route", "popular"}),
        )
    return None


def similar_people(s: Scene) -> Evidence | None:
    if "collaborative" in s.c.sources or s.c.features.get("user_knn_rank_score", 0) >= 0.5:
        return Evidence(
            "item.similar_people",
            s.say("similar"),
            topics=frozenset({"similar"}),
        )
    return None


def new_to_them(s: Scene) -> Evidence | None:
    if s.visits:
        return None
    return Evidence("item.new", s.say("new"), topics=frozenset({"new"}))


NEUTRAL_RULES: tuple[Rule, ...] = (
    had_before,
    route_to_it,
    slot_habits(),
    usual_next,
    rising_interest,
    active_now,
    liked_kind,
    usual_hour,
    others_next,
    similar_people,
    new_to_them,
)


def item_evidence(scene: Scene, rules: Sequence[Rule], kind: str) -> ItemEvidence:
    """The evidence for ``scene.c`` and what is true of the item itself."""
    found = gather(scene, rules)
    c = scene.c
    return ItemEvidence(
        c.item_id,
        kind,
        c.category,
        scene.visits,
        found,
        frozenset({str(scene.visits)}) if scene.visits else frozenset(),
        frozenset({"visits"} if scene.visits else {"new"}),
        frozenset(k.lower() for k in c.kinds),
    )
