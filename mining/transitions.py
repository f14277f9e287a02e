"""First-order Markov transitions between categories and places (per user and global)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core import columns as C
from mining.facts import Fact, insufficient
from mining.feedback import split_feedback
from mining.frame import UserEvents

MAX_GAP_H = 24.0  # a "next" event more than a day later is a new trajectory, not a transition


@dataclass
class GlobalStats:
    """Shared by all users: global transitions and popularity, computed once per mining run."""

    category_next: dict[str, dict[str, float]] = field(default_factory=dict)
    place_next: dict[str, dict[str, float]] = field(default_factory=dict)
    category_share: dict[str, float] = field(default_factory=dict)
    n_events: int = 0


def _pairs(user: np.ndarray, ts_h: np.ndarray, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    same = (user[1:] == user[:-1]) & ((ts_h[1:] - ts_h[:-1]) <= MAX_GAP_H)
    a, b = seq[:-1][same], seq[1:][same]
    ok = np.array([x is not None and y is not None for x, y in zip(a, b, strict=True)], dtype=bool)
    return a[ok], b[ok]


def _normalise(pairs: tuple[np.ndarray, np.ndarray], top: int = 10) -> dict[str, dict[str, float]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for x, y in zip(*pairs, strict=True):
        counts[str(x)][str(y)] += 1
    out = {}
    for x, cnt in counts.items():
        total = sum(cnt.values())
        out[x] = {y: round(c / total, 4) for y, c in cnt.most_common(top)}
    return out


def global_stats(events: pd.DataFrame) -> GlobalStats:
    """Global transition matrices over all users (sparse: top next states per state). Feedback
    on recommendations is left out: a reaction is not a move."""
    events, _ = split_feedback(events)
    if len(events) == 0:
        return GlobalStats()
    df = events.sort_values([C.USER, C.TIME], kind="stable")
    user = df[C.USER].astype(str).to_numpy()
    ts_h = pd.to_datetime(df[C.TIME], utc=True).dt.as_unit("ns").astype("int64").to_numpy() / 3.6e12
    cat = df[C.CATEGORY].to_numpy(dtype=object) if C.CATEGORY in df else np.full(len(df), None, dtype=object)
    cat = np.array([c if isinstance(c, str) and c else None for c in cat], dtype=object)
    item = df[C.ITEM].astype("object").to_numpy()
    item = np.array(
        [None if i is None or (isinstance(i, float) and np.isnan(i)) else str(i) for i in item], dtype=object
    )
    shares = pd.Series([c for c in cat if c is not None]).value_counts(normalize=True)
    return GlobalStats(
        category_next=_normalise(_pairs(user, ts_h, cat)),
        place_next=_normalise(_pairs(user, ts_h, item)),
        category_share={str(k): round(float(v), 5) for k, v in shares.items()},
        n_events=len(df),
    )


def transition_facts(ev: UserEvents, ctx: Any = None) -> list[Fact]:
    """``ctx``: the MiningContext (its global statistics and words)."""
    gs: GlobalStats | None = getattr(ctx, "global_stats", None)
    item = getattr(getattr(ctx, "nouns", None), "item", "item")
    users = np.zeros(ev.n, dtype=int)
    ts_h = ev.ts.as_unit("ns").asi8 / 3.6e12
    facts: list[Fact] = []
    cat_pairs = _pairs(users, ts_h, ev.category)
    place_pairs = _pairs(users, ts_h, ev.item)
    n_pairs = len(place_pairs[0])
    if n_pairs < 3:
        facts.append(
            insufficient(
                "trans.places", "transition", f"{item}-to-{item} routines", n_pairs, "needs ≥ 3 transitions"
            )
        )
    else:
        pm = _normalise(place_pairs, top=5)
        routines = []
        counts = Counter(zip(place_pairs[0], place_pairs[1], strict=True))
        for (a, b), c in counts.most_common(3):
            if c >= 2 and a != b:
                routines.append({"from": str(a), "to": str(b), "count": c, "p": pm[str(a)][str(b)]})
        statement = (
            "Repeated routes: "
            + "; ".join(f"{item} {r['from']} → {item} {r['to']} ({r['count']}×)" for r in routines)
            + "."
            if routines
            else f"No repeated {item}-to-{item} route among {n_pairs} transitions."
        )
        facts.append(
            Fact(
                "trans.places",
                "transition",
                statement,
                {"top_routes": routines, "matrix": pm},
                n_pairs,
                min(1.0, n_pairs / 30),
            )
        )
    if len(cat_pairs[0]) >= 3:
        cm = _normalise(cat_pairs, top=5)
        facts.append(
            Fact(
                "trans.categories",
                "transition",
                _cat_statement(cm, Counter(cat_pairs[0])),
                {"matrix": cm},
                len(cat_pairs[0]),
                min(1.0, len(cat_pairs[0]) / 30),
            )
        )
    # Likely next categories from the last event: the user's own transitions, backed off to global.
    last_cat = next((c for c in ev.category[::-1] if c is not None), None)
    if last_cat is not None:
        own = _normalise(cat_pairs, top=5).get(last_cat, {}) if len(cat_pairs[0]) else {}
        glob = gs.category_next.get(last_cat, {}) if gs else {}
        w = min(1.0, sum(1 for x in cat_pairs[0] if x == last_cat) / 5)
        mix: dict[str, float] = {k: w * v for k, v in own.items()}
        for k, v in glob.items():
            mix[k] = mix.get(k, 0.0) + (1 - w) * v
        nxt = [(k, round(v, 3)) for k, v in sorted(mix.items(), key=lambda kv: -kv[1])[:3]]
        if nxt:
            facts.append(
                Fact(
                    "trans.next",
                    "transition",
                    f"After {last_cat} (the latest category), likely next: "
                    + ", ".join(k for k, _ in nxt)
                    + ".",
                    {"after": last_cat, "next": nxt, "own_weight": round(w, 2)},
                    len(cat_pairs[0]),
                    0.3 + 0.5 * w,
                )
            )
    return facts


def _cat_statement(cm: dict[str, dict[str, float]], freq: Counter[str]) -> str:
    parts = []
    for a, _ in freq.most_common(2):
        b, p = next(iter(cm[a].items()))
        parts.append(f"after {a} usually {b} ({p:.0%})")
    return "Category routines: " + "; ".join(parts) + "."
