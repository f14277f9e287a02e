"""Interest drift: category (or place) shares in an early vs a recent window."""

from __future__ import annotations

import numpy as np

from mining.facts import Fact, insufficient
from mining.frame import UserEvents

MIN_EVENTS = 12
DELTA = 0.1  # share change that counts as emerging/fading


def _shares(values: np.ndarray) -> dict[str, float]:
    vals = [str(v) for v in values if v is not None]
    if not vals:
        return {}
    uniq, counts = np.unique(np.array(vals), return_counts=True)
    return {str(u): float(c) / len(vals) for u, c in zip(uniq, counts, strict=True)}


def drift_facts(ev: UserEvents) -> list[Fact]:
    has_cat = np.array([c is not None for c in ev.category])
    use_cat = has_cat.sum() >= MIN_EVENTS
    values = (
        ev.category if use_cat else np.array([f"place {i}" if i else None for i in ev.item], dtype=object)
    )
    n = int(sum(v is not None for v in values))
    if n < MIN_EVENTS:
        return [
            insufficient(
                "drift.interests", "drift", "interest drift", n, f"needs ≥ {MIN_EVENTS} labelled events"
            )
        ]
    # Early = first 40 %, recent = last 40 % of the user's events (by time).
    cut_a, cut_b = int(ev.n * 0.4), int(ev.n * 0.6)
    early, recent = _shares(values[:cut_a]), _shares(values[cut_b:])
    keys = set(early) | set(recent)
    change = {k: recent.get(k, 0.0) - early.get(k, 0.0) for k in keys}
    emerging = sorted((k for k in keys if change[k] >= DELTA), key=lambda k: -change[k])[:3]
    fading = sorted((k for k in keys if change[k] <= -DELTA), key=lambda k: change[k])[:3]
    what = "categories" if use_cat else "places"
    if emerging or fading:
        parts = []
        if emerging:
            parts.append(
                "more " + ", ".join(f"{k} ({early.get(k, 0):.0%}→{recent.get(k, 0):.0%})" for k in emerging)
            )
        if fading:
            parts.append(
                "less " + ", ".join(f"{k} ({early.get(k, 0):.0%}→{recent.get(k, 0):.0%})" for k in fading)
            )
        statement = f"Interests are shifting ({what}): " + "; ".join(parts) + "."
    else:
        noun = "category" if use_cat else "place"
        statement = f"Interests are stable: no {noun}'s share moved by {DELTA:.0%} or more."
    value = {
        "basis": what,
        "emerging": [
            {"key": k, "early": round(early.get(k, 0), 3), "recent": round(recent.get(k, 0), 3)}
            for k in emerging
        ],
        "fading": [
            {"key": k, "early": round(early.get(k, 0), 3), "recent": round(recent.get(k, 0), 3)}
            for k in fading
        ],
        "window_events": [cut_a, ev.n - cut_b],
    }
    return [Fact("drift.interests", "drift", statement, value, n, min(1.0, n / 40))]
