"""How places are described in text: the embedding text (name, category, attributes and a coarse
place description) and a landmark for a location ("near Midtown Manhattan").

The landmarks are the New York ones of the Foursquare data; elsewhere a place is described by a
coarse grid cell."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from retrieval.catalog import item_text

# Coarse landmarks for a human-readable "near ..." (the NYC data); elsewhere a compass grid cell.
LANDMARKS = (
    ("Lower Manhattan", 40.7075, -74.0113),
    ("Midtown Manhattan", 40.7549, -73.9840),
    ("Upper Manhattan", 40.8116, -73.9465),
    ("Brooklyn", 40.6782, -73.9442),
    ("Queens", 40.7282, -73.7949),
    ("the Bronx", 40.8448, -73.8648),
    ("Staten Island", 40.5795, -74.1502),
    ("Jersey City", 40.7178, -74.0431),
)
LANDMARK_KM = 8.0


def place_description(lat: float | None, lon: float | None) -> str:
    if lat is None or lon is None or math.isnan(float(lat)) or math.isnan(float(lon)):
        return "location unknown"
    best, dist = None, 1e9
    for name, la, lo in LANDMARKS:
        d = math.hypot((lat - la) * 111, (lon - lo) * 111 * math.cos(math.radians(la)))
        if d < dist:
            best, dist = name, d
    if best is not None and dist <= LANDMARK_KM:
        return f"near {best}"
    return f"area {round(lat, 1)}, {round(lon, 1)}"  # ~10 km cell: coarse on purpose


def place_text(row: Mapping[str, Any]) -> str:
    """The embedding text of a place: what any item says of itself, and roughly where it is."""
    return f"{item_text(row, noun='Place')} · {place_description(row.get('lat'), row.get('lon'))}"
