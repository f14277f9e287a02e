"""The places domain's evidence: what links a shown place to the person by where it is.

Beside the neutral rules (domains/evidence.py), worded for places: the area a time-slot habit of
theirs is usually in when the place is near it, a home or work anchor it is near, and how far it is
from where they are (or their last stop). Every distance is a value the faithfulness checker holds
the text to.
"""

from __future__ import annotations

from domains.evidence import Evidence, ItemEvidence, Phrases, Rule, Scene, gather, num
from domains.places.geo import km_between
from domains.places.labels import Anchor, location, nearest_anchor
from domains.rules import (
    active_now,
    had_before,
    liked_kind,
    new_to_them,
    others_next,
    rising_interest,
    route_to_it,
    similar_people,
    slot_habits,
    usual_hour,
    usual_next,
)
from mining import Fact

NEAR_KM = 1.5  # "close by", "near your home area" need at most this

PLACE_PHRASES = Phrases(
    had="You have been here {times}.",
    route="You often go from {origin} to here ({count} times).",
    own_route="You have gone straight from your last stop{frm} to here {times}.",
    slot_item="On {label} you often come to this very place ({k} of {n} visits).",
    slot_kind="On {label} you usually go to {kind} places.",
    next_kind="After {after} (your latest stop), {kind} places are a usual next stop.",
    rising="Lately you go to {what} more (up from {early}% to {recent}% of your outings).",
    this_item="this place",
    usual_hour="Most of your visits here were around this time of day.",
    others_next="Other people often go here after {last}.",
    similar="People who go to the places you go also come here.",
    new="You have not been here before.",
)


def _anchors(s: Scene) -> list[Anchor]:
    return s.person if isinstance(s.person, list) else []


def area_habit(s: Scene, f: Fact, label: str, parts: frozenset[str]) -> Evidence | None:
    """In the request's slot they are usually in an area, and this place is near it."""
    lat, lon = location(s.c)
    centres = {a.area: a for a in _anchors(s)}
    area = f.value.get("area") if isinstance(f.value, dict) else None
    if area not in centres or lat is None or lon is None:
        return None
    a = centres[area]
    d = km_between(lat, lon, a.lat, a.lon)
    if d > NEAR_KM:
        return None
    # What the area is to them ("your likely work area"), unless its name comes from a time slot:
    # "your usual weekday-morning area" said of their middays names a slot this fact does not state.
    km = num(round(d, 1))
    where = f"an area {km} km from here" if a.fact_id.startswith("habit.") else f"{a.name}, {km} km from here"
    # "your likely work area" makes a claim about work: the evidence backs it
    anchor_topics = {t for t in ("home", "work") if t in where}
    return Evidence(
        f.id,
        f"On {label} you are usually in {where}.",
        frozenset({km}),
        parts=parts,
        topics=frozenset({"habit", "near", *anchor_topics}),
    )


def near_anchor(s: Scene) -> Evidence | None:
    homes = [a for a in _anchors(s) if a.fact_id in ("space.home", "space.work")]
    near = nearest_anchor(homes, *location(s.c))
    if near is None or near[1] > NEAR_KM or near[0].fact_id not in s.facts:
        return None
    a, d = near
    return Evidence(
        a.fact_id,
        f"It is {num(round(d, 1))} km from {a.name}.",
        frozenset({num(round(d, 1))}),
        topics=frozenset({"near", "home" if a.fact_id == "space.home" else "work"}),
    )


def how_far(s: Scene) -> Evidence | None:
    dist = s.c.features.get("distance_km")
    if dist is None or dist > 2 * NEAR_KM:
        return None
    where = "where you are" if "lat" in s.moment.args else "your last stop"
    return Evidence(
        "item.distance",
        f"It is {num(round(dist, 1))} km from {where}.",
        frozenset({num(round(dist, 1))}),
        topics=frozenset({"near"} if dist <= NEAR_KM else set()),
    )


PLACE_RULES: tuple[Rule, ...] = (
    had_before,
    route_to_it,
    slot_habits(area_habit),
    usual_next,
    near_anchor,
    rising_interest,
    active_now,
    liked_kind,
    usual_hour,
    how_far,
    others_next,
    similar_people,
    new_to_them,
)


def place_evidence(scene: Scene, kind: str) -> ItemEvidence:
    """The place's evidence, and what is true of it itself: its visits, how far it is."""
    found = gather(scene, PLACE_RULES)
    dist = scene.c.features.get("distance_km")
    numbers = {str(scene.visits)} if scene.visits else set()
    topics = {"visits"} if scene.visits else {"new"}
    if dist is not None:
        numbers |= {f"{dist:.1f}".rstrip("0").rstrip("."), f"{dist:.1f}"}
        if dist <= NEAR_KM:
            topics.add("near")
    if scene.c.category and "home" in scene.c.category.lower():
        topics.add("home")  # "your home" is the place itself
    return ItemEvidence(
        scene.c.item_id,
        kind,
        scene.c.category,
        scene.visits,
        found,
        frozenset(numbers),
        frozenset(topics),
        frozenset(k.lower() for k in scene.c.kinds),
        {"distance_km": dist},
    )
