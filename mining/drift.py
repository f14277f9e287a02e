"""Interest drift: shares of kinds (else of items) in an early vs a recent window.

An item of several kinds (a film's genres) counts towards each of them."""

from __future__ import annotations

from typing import Any

import numpy as np

from mining.facts import Fact, insufficient
from mining.frame import UserEvents

MIN_EVENTS = 12
DELTA = 0.1  # share change that counts as emerging/fading


def _shares(values: list[tuple[str, ...]]) -> dict[str, float]:
    vals = [str(k) for v in values for k in v]
    if not vals:
        return {}
    uniq, counts = np.unique(np.array(vals), return_counts=True)
    return {str(u): float(c) / len(vals) for u, c in zip(uniq, counts, strict=True)}


def drift_facts(ev: UserEvents, ctx: Any = None) -> list[Fact]:
    nouns = getattr(ctx, "nouns", None)
    item = getattr(nouns, "item", "item")
    kind, kinds = getattr(nouns, "kind", "kind"), getattr(nouns, "kinds", "kinds")
    use_cat = sum(1 for k in ev.kinds if k) >= MIN_EVENTS
    values: list[tuple[str, ...]] = (
        list(ev.kinds) if use_cat else [(f"{item} {i}",) if i else () for i in ev.item]
    )
    n = int(sum(1 for v in values if v))
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
    what = kinds if use_cat else getattr(nouns, "items", f"{item}s")
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
        noun = kind if use_cat else item
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
