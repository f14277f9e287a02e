"""What links a shown place to this person: the evidence its explanation may use, with values.

For each place shown, the facts of the user's profile that actually concern it (a repeated route
that ends there, a time-slot habit at that very place, of its kind or in its area when the
request falls in that slot, an anchor it is near, a drift toward it, the hours and days they are
usually out when the request matches them) and the place's own attributes as this person sees
them (how often they went, how far it is, whether people go there from their last stop). Each
piece carries the values a sentence may state: numbers, days, parts of the day, kinds of place,
areas and topics. The LLM explains from these and nothing else; the faithfulness checker holds
its text against them (agent/llm/faithfulness.py); the template phrases them when the LLM cannot.

Profile facts are cited by their ids (they exist in the profile version used); the place's own
attributes by ``item.*`` ids, derived from the same history at request time and stored with the
explanation in the trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from agent.labels import (
    SLOT_NAMES,
    Anchor,
    anchors,
    area_names,
    kind_of,
    nearest_anchor,
    visit_count,
    visits_phrase,
)
from core.geo import km_between
from mining import Fact, UserProfile
from mining.feedback import category_fact_id
from mining.habits import SLOTS
from mining.rhythm import DAYS
from retrieval.types import Candidate

NEAR_KM = 1.5  # "close by", "near your home area" need at most this
MAX_EVIDENCE = 4
MIN_EVIDENCE = 2
# Parts of the day a time-slot habit speaks for (what an explanation of it may say).
SLOT_PARTS = {
    "wd_morning": {"morning", "weekday"},
    "wd_midday": {"midday", "lunch", "noon", "weekday"},
    "wd_evening": {"evening", "weekday", "after work"},
    "we_day": {"weekend", "daytime", "saturday", "sunday"},
    "night": {"night", "late", "tonight"},
}


@dataclass(frozen=True)
class Evidence:
    """One reason a place fits, in words and in checkable values."""

    id: str  # a profile fact id, or item.<what> for the place's own attributes
    text: str  # one plain sentence, values included
    numbers: frozenset[str] = frozenset()
    days: frozenset[str] = frozenset()
    parts: frozenset[str] = frozenset()  # parts of the day / week it speaks for
    kinds: frozenset[str] = frozenset()  # kinds of place it names
    topics: frozenset[str] = frozenset()  # visits, route, near, habit, trend, time, popular, similar, new

    def to_dict(self) -> dict[str, Any]:
        # by hand, not dataclasses.asdict: its deep copies were a tenth of a template request
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in d.items() if v}


@dataclass
class PlaceEvidence:
    """All the evidence for one shown place, strongest first, and its own attributes."""

    item_id: str
    kind: str
    category: str | None
    visits: int
    distance_km: float | None
    evidence: list[Evidence] = field(default_factory=list)

    def by_id(self) -> dict[str, Evidence]:
        return {e.id: e for e in self.evidence}

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "kind": self.kind,
            "visits": self.visits,
            "distance_km": self.distance_km,
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True)
class RequestMoment:
    """The request's local time and the person's last stop (what "now" and "from here" mean)."""

    local: datetime  # local wall-clock time of the request
    last_item: str | None = None
    last_kind: str | None = None
    at_request_place: bool = False  # distances are from where they are, not their last stop


def _num(x: float | int) -> str:
    return f"{x:.1f}" if isinstance(x, float) and not float(x).is_integer() else str(int(x))


def _usable(profile: UserProfile | None) -> dict[str, Fact]:
    return {f.id: f for f in (profile.facts if profile else []) if f.sufficient}


def _slot_of(local: datetime) -> str | None:
    wd, h = local.weekday(), local.hour
    for sid, _, pred in SLOTS:
        if bool(pred(wd, h)):
            return sid
    return None


def place_evidence(
    profile: UserProfile | None,
    c: Candidate,
    moment: RequestMoment,
    kind_of_item: Callable[[str], str | None] = lambda _i: None,
    anchor_list: list[Anchor] | None = None,
) -> PlaceEvidence:
    """The evidence linking ``c`` to this person at ``moment``. ``kind_of_item`` names other places
    (the start of a route) by their kind."""
    facts = _usable(profile)
    anchor_list = anchors(profile) if anchor_list is None else anchor_list
    kind = kind_of(c)
    visits = visit_count(c)
    dist = c.features.get("distance_km")
    out: list[Evidence] = []
    last_kind = moment.last_kind or (kind_of_item(moment.last_item) if moment.last_item else None)

    if visits:
        out.append(
            Evidence(
                "item.visits",
                f"You have been here {visits_phrase(visits)}.",
                frozenset({str(visits)}),
                topics=frozenset({"visits"}),
            )
        )
    routes = facts.get("trans.places")
    on_route = False
    if routes is not None and isinstance(routes.value, dict):
        for r in routes.value.get("top_routes", []):
            if str(r.get("to")) == c.item_id and r.get("count"):
                origin = kind_of_item(str(r.get("from"))) or "another of your places"
                out.append(
                    Evidence(
                        "trans.places",
                        f"You often go from {_a(origin)} to here ({r['count']} times).",
                        frozenset({str(r["count"])}),
                        kinds=frozenset({origin}),
                        topics=frozenset({"route", "visits"}),
                    )
                )
                on_route = True
                break
    own_route = round(c.features.get("user_trans_count", 0))
    if own_route and not on_route:
        frm = f" ({_a(last_kind)})" if last_kind else ""
        out.append(
            Evidence(
                "item.route",
                f"You have gone straight from your last stop{frm} to here {visits_phrase(own_route)}.",
                frozenset({str(own_route)}),
                kinds=frozenset({last_kind} if last_kind else set()),
                topics=frozenset({"route"}),
            )
        )
    slot_now = _slot_of(moment.local)
    names = area_names(profile)
    centres = {a.area: a for a in anchor_list}
    for sid, label in SLOT_NAMES.items():
        f = facts.get(f"habit.{sid}")
        if f is None or not isinstance(f.value, dict):
            continue
        v = f.value
        parts = frozenset(SLOT_PARTS.get(sid, set()))
        if str(v.get("item")) == c.item_id and v.get("item_share"):
            n_slot = int(v.get("events", 0))
            k = round(float(v["item_share"]) * n_slot)
            out.append(
                Evidence(
                    f.id,
                    f"On {label} you often come to this very place ({k} of {n_slot} visits).",
                    frozenset({str(k), str(n_slot)}),
                    parts=parts,
                    topics=frozenset({"habit", "visits"}),
                )
            )
        elif sid == slot_now and c.category and v.get("category") == c.category:
            out.append(
                Evidence(
                    f.id,
                    f"On {label} you usually go to {c.category} places.",
                    parts=parts,
                    kinds=frozenset({c.category}),
                    topics=frozenset({"habit"}),
                )
            )
        elif sid == slot_now and v.get("area") in centres and c.lat is not None and c.lon is not None:
            a = centres[v["area"]]
            d = km_between(c.lat, c.lon, a.lat, a.lon)
            area_name = names.get(a.area, (a.name, ""))[0]
            # "your likely work area" makes a claim about work: the evidence backs it
            anchor_topics = {t for t in ("home", "work") if t in area_name}
            if d <= NEAR_KM:
                out.append(
                    Evidence(
                        f.id,
                        f"On {label} you are usually in {area_name}, {_num(round(d, 1))} km from here.",
                        frozenset({_num(round(d, 1))}),
                        parts=parts,
                        topics=frozenset({"habit", "near", *anchor_topics}),
                    )
                )
    nxt = facts.get("trans.next")
    if nxt is not None and isinstance(nxt.value, dict) and c.category:
        cats = [str(x[0]) for x in nxt.value.get("next", [])]
        after = str(nxt.value.get("after", ""))
        if c.category in cats and after:
            out.append(
                Evidence(
                    "trans.next",
                    f"After {_a(after)} (your latest stop), {c.category} places are a usual next stop.",
                    kinds=frozenset({after, c.category}),
                    topics=frozenset({"route"}),
                )
            )
    near = nearest_anchor([a for a in anchor_list if a.fact_id in ("space.home", "space.work")], c.lat, c.lon)
    if near is not None and near[1] <= NEAR_KM and near[0].fact_id in facts:
        a, d = near
        out.append(
            Evidence(
                a.fact_id,
                f"It is {_num(round(d, 1))} km from {a.name}.",
                frozenset({_num(round(d, 1))}),
                topics=frozenset({"near", "home" if a.fact_id == "space.home" else "work"}),
            )
        )
    drift = facts.get("drift.interests")
    if drift is not None and isinstance(drift.value, dict):
        for e in drift.value.get("emerging", []):
            key = str(e.get("key"))
            if key == c.item_id or (c.category and key == c.category):
                what = "this place" if key == c.item_id else f"{c.category} places"
                early, recent = round(100 * float(e["early"])), round(100 * float(e["recent"]))
                out.append(
                    Evidence(
                        "drift.interests",
                        f"Lately you go to {what} more (up from {early}% to {recent}% of your outings).",
                        frozenset({str(early), str(recent)}),
                        kinds=frozenset({c.category} if key != c.item_id and c.category else set()),
                        topics=frozenset({"trend"}),
                    )
                )
                break
    peaks = facts.get("rhythm.peak_hours")
    if peaks is not None and isinstance(peaks.value, dict):
        hour = moment.local.hour + moment.local.minute / 60
        for p in peaks.value.get("peaks", [])[:2]:
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
    days = facts.get("rhythm.peak_days")
    if days is not None and isinstance(days.value, dict):
        top = [DAYS[int(d)] for d in days.value.get("top_days", [])[:2]]
        today = DAYS[moment.local.weekday()]
        if today in top:
            out.append(
                Evidence(
                    "rhythm.peak_days",
                    f"{today} is one of your busiest days.",
                    days=frozenset({today}),
                    topics=frozenset({"time"}),
                )
            )
    liked = _liked_kind(facts, c.category)
    if liked is not None:
        out.append(liked)
    if visits >= 2 and c.features.get("user_hour_affinity_share", 0) >= 0.5:
        out.append(
            Evidence(
                "item.hour",
                "Most of your visits here were around this time of day.",
                topics=frozenset({"time", "visits"}),
            )
        )
    if dist is not None and dist <= 2 * NEAR_KM:
        where = "where you are" if moment.at_request_place else "your last stop"
        out.append(
            Evidence(
                "item.distance",
                f"It is {_num(round(dist, 1))} km from {where}.",
                frozenset({_num(round(dist, 1))}),
                topics=frozenset({"near"} if dist <= NEAR_KM else set()),
            )
        )
    if c.features.get("global_trans_prob", 0) >= 0.05 and last_kind:
        out.append(
            Evidence(
                "item.others_next",
                f"Other people often go here after {_a(last_kind)}.",
                kinds=frozenset({last_kind}),
                topics=frozenset({"route", "popular"}),
            )
        )
    if "collaborative" in c.sources or c.features.get("user_knn_rank_score", 0) >= 0.5:
        out.append(
            Evidence(
                "item.similar_people",
                "People who go to the places you go also come here.",
                topics=frozenset({"similar"}),
            )
        )
    if not visits:
        out.append(Evidence("item.new", "You have not been here before.", topics=frozenset({"new"})))
    return PlaceEvidence(c.item_id, kind, c.category, visits, dist, _strongest(out))


def _liked_kind(facts: dict[str, Fact], category: str | None) -> Evidence | None:
    """ "You accepted 3 of 5 Coffee Shop suggestions." when they accepted more of that kind than
    they rejected (mining.feedback); a kind they mostly reject is never offered as a reason."""
    fact = facts.get(category_fact_id(category)) if category else None
    v = fact.value if fact is not None and isinstance(fact.value, dict) else None
    if fact is None or v is None or not v.get("accepted", 0) > v.get("rejected", 0):
        return None
    a, m = int(v["accepted"]), int(v["shown_with_reaction"])
    return Evidence(
        fact.id,
        f"You accepted {a} of {m} {category} suggestions.",
        frozenset({str(a), str(m)}),
        kinds=frozenset({str(category)}),
        topics=frozenset({"feedback"}),
    )


def _a(kind: str) -> str:
    """ "a Bar", "an Art Museum"; a phrase that is not a kind stays as it is."""
    if kind.startswith(("another", "your", "a ", "an ")):
        return kind
    return ("an " if kind[:1].lower() in "aeiou" else "a ") + kind


def _strongest(items: list[Evidence]) -> list[Evidence]:
    """One piece per id (the first, strongest): what is about this person first, at most
    MAX_EVIDENCE; generic signals (new to you, how far, what other people do) only while fewer
    than MIN_EVIDENCE personal ones exist. A small model writes better from a few facts, and
    words borrowed from a fact it did not choose are what the checker rejects most."""
    seen: set[str] = set()
    unique = [e for e in items if not (e.id in seen or seen.add(e.id))]  # type: ignore[func-returns-value]
    generic = {"item.new", "item.similar_people", "item.others_next", "item.distance"}
    personal = [e for e in unique if e.id not in generic][:MAX_EVIDENCE]
    fill = [e for e in unique if e.id in generic][: max(0, MIN_EVIDENCE - len(personal))]
    return personal + fill
