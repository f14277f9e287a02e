"""The places domain's chat argument: how far ("closer", "walking distance", "anywhere")."""

from __future__ import annotations

import re
from typing import Any

NEAR_KM = 2.0
MIN_KM = 0.3
# Words that must appear before a distance may act: they verify the model's choice against the
# message; they do not understand anything on their own.
DISTANCE_CUES = re.compile(
    r"\b(near|nearer|nearby|close|closer|closest|walk\w*|far|farther|further|distance|around here|"
    r"km|kilomet\w*|mile\w*|block\w*|minutes?|radius|local|neighbou?rhood|anywhere|cerca|près|nah)\b",
    re.IGNORECASE,
)
CLOSER = re.compile(r"\b(closer|nearer|even closer)\b", re.IGNORECASE)


class Distance:
    name = "distance"
    default = "same"
    prompt = 'distance: "near", "closer", "farther" or "any", only if they talk about distance.'

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": ["same", "near", "closer", "farther", "any"], "default": "same"}

    def cued(self, message: str) -> bool:
        return bool(DISTANCE_CUES.search(message))

    def from_rules(self, message: str) -> str:
        return "closer" if CLOSER.search(message) else "near" if DISTANCE_CUES.search(message) else "same"

    def strip(self, text: str) -> str:
        """The message without its distance words (what is left may be a wish)."""
        return DISTANCE_CUES.sub(" ", CLOSER.sub(" ", text))

    def apply(self, args: dict[str, Any], value: Any) -> dict[str, Any]:
        current = args.get("max_distance_km")
        km = _distance(current, str(value))
        out = dict(args)
        if km is None:
            out.pop("max_distance_km", None)
        else:
            out["max_distance_km"] = km
        return out


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


DISTANCE = Distance()
