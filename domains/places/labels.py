"""Readable names for places and areas, relative to the person: never a bare id.

The NYC data has no venue names, so a place is named by its kind and where it is for this user
("Mexican Restaurant, 0.6 km from your usual weekday-midday area", "Bar you have been to 27
times"), and a mined area ("area A1") by what it is to them ("your likely home area"). Built from
the profile's own facts (cluster centres, home and work anchors, time-slot habits), so a label
never says more than the profile knows. A candidate's location is in its ``attrs`` (lat, lon).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domains.naming import visit_count, visits_phrase
from domains.places.geo import km_between
from mining import UserProfile

NEAR_ANCHOR_KM = 3.0  # beyond this, "x km from your home area" stops helping; a landmark does better
SLOT_AREA = {  # "your usual <this> area"
    "wd_morning": "weekday-morning",
    "wd_midday": "weekday-midday",
    "wd_evening": "weekday-evening",
    "we_day": "weekend",
    "night": "late-night",
}


@dataclass(frozen=True)
class Anchor:
    """A place in the person's life: a mined area with a centre and a name for them."""

    area: str  # the miner's id, e.g. "area A1"
    name: str  # "your likely home area"
    lat: float
    lon: float
    fact_id: str  # the fact that makes it theirs


def _centres(profile: UserProfile | None) -> dict[str, tuple[float, float, float]]:
    """area id -> (lat, lon, share of located activity)."""
    f = profile.fact("space.clusters") if profile else None
    if f is None or not f.sufficient or not isinstance(f.value, dict):
        return {}
    out = {}
    for c in f.value.get("clusters", []):
        centre = c.get("center") or []
        if len(centre) == 2:
            out[str(c["id"])] = (float(centre[0]), float(centre[1]), float(c.get("share", 0.0)))
    return out


def area_names(profile: UserProfile | None) -> dict[str, tuple[str, str]]:
    """area id -> (what it is to this person, the fact that says so); the strongest meaning wins:
    home, then work, then the time slot it holds, then "one of your usual areas"."""
    names: dict[str, tuple[str, str]] = {}
    if profile is None:
        return names
    for fid, what in (("space.home", "your likely home area"), ("space.work", "your likely work area")):
        f = profile.fact(fid)
        if f is not None and f.sufficient and isinstance(f.value, dict) and f.value.get("cluster"):
            names.setdefault(str(f.value["cluster"]), (what, fid))
    for f in profile.facts:
        if f.id.startswith("habit.") and f.sufficient and isinstance(f.value, dict) and f.value.get("area"):
            slot = SLOT_AREA.get(str(f.value.get("slot")), "")
            names.setdefault(str(f.value["area"]), (f"your usual {slot} area".replace("  ", " "), f.id))
    for area in _centres(profile):
        names.setdefault(area, ("one of your usual areas", "space.clusters"))
    return names


def anchors(profile: UserProfile | None) -> list[Anchor]:
    centres = _centres(profile)
    return [
        Anchor(area, name, centres[area][0], centres[area][1], fid)
        for area, (name, fid) in area_names(profile).items()
        if area in centres
    ]


def nearest_anchor(
    anchor_list: list[Anchor], lat: float | None, lon: float | None
) -> tuple[Anchor, float] | None:
    if lat is None or lon is None or not anchor_list or math.isnan(lat) or math.isnan(lon):
        return None
    dists = [km_between(lat, lon, a.lat, a.lon) for a in anchor_list]
    i = min(range(len(dists)), key=dists.__getitem__)
    return anchor_list[i], dists[i]


def location(c: Any) -> tuple[float | None, float | None]:
    attrs = getattr(c, "attrs", None) or {}
    return attrs.get("lat"), attrs.get("lon")


def kind_of(c: Any) -> str:
    """What kind of place it is, in words: its category, else its name, else "Place"."""
    return getattr(c, "category", None) or getattr(c, "name", None) or "Place"


def place_relation(c: Any, anchor_list: list[Anchor]) -> str | None:
    """Where the place is for this person: "0.6 km from your likely work area" (None if no anchor
    of theirs is within NEAR_ANCHOR_KM)."""
    near = nearest_anchor(anchor_list, *location(c))
    if near is None or near[1] > NEAR_ANCHOR_KM:
        return None
    return f"{near[1]:.1f} km from {near[0].name}"


def place_label(c: Any, anchor_list: list[Anchor]) -> str:
    """ "Bar you have been to 27 times", "Taco Place, 0.6 km from your likely work area",
    "Park, new to you": kind plus the one relation that means most to the person."""
    kind = kind_of(c)
    n = visit_count(c)
    if n:
        return f"{kind} you have been to {visits_phrase(n)}"
    where = place_relation(c, anchor_list)
    return f"{kind}, {where}" if where else f"{kind}, new to you"


def readable_area_text(text: str, profile: UserProfile | None) -> str:
    """A profile text with "area A1" replaced by what the area is to the person."""
    for area, (name, _) in sorted(area_names(profile).items(), key=lambda kv: -len(kv[0])):
        text = re.sub(rf"\b{re.escape(area)}\b", name, text)
    return text


def readable_profile_text(
    text: str, profile: UserProfile | None, kind_of_item: Callable[[str], str | None] = lambda _i: None
) -> str:
    """A profile text for the person: areas named by what they are to them, places by their kind
    ("place 4128" -> "a Bar", or "one of your regular places" where the kind is unknown)."""

    def place(m: re.Match[str]) -> str:
        kind = kind_of_item(m.group(1))
        if not kind:
            return "one of your regular places"
        return ("an " if kind[:1].lower() in "aeiou" else "a ") + kind

    return re.sub(r"\bplace (\w+)", place, readable_area_text(text, profile))
