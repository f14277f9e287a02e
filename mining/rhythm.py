"""Temporal rhythm: when in the day and week the user is active, how regular, how bursty.

Where a domain's people act in bursts (a film fan rates 40 films in one sitting), the rhythm is
counted in sittings, not events (``MiningContext.sessions``): one evening of ratings is one
evening, not a weekly habit.
"""

from __future__ import annotations

import numpy as np

from mining.facts import Fact, insufficient
from mining.frame import UserEvents
from mining.plan import MiningContext

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MIN_EVENTS = 5
SESSION_GAP_H = 3.0  # events closer than this belong to one outing


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def hour_label(h: int) -> str:
    return f"{h:02d}-{(h + 1) % 24:02d}h"


def session_starts(ev: UserEvents) -> np.ndarray:
    """Positions of the events that start a sitting (more than SESSION_GAP_H after the one before)."""
    t = ev.ts.as_unit("ns").asi8 / 3.6e12
    if not len(t):
        return np.zeros(0, dtype=int)
    return np.flatnonzero(np.r_[True, np.diff(t) > SESSION_GAP_H])


def rhythm_facts(ev: UserEvents, ctx: MiningContext | None = None) -> list[Fact]:
    ctx = ctx or MiningContext()
    events = ctx.nouns.events
    at = session_starts(ev) if ctx.sessions else np.arange(ev.n)
    unit = "sittings" if ctx.sessions else events
    n = len(at)
    if n < MIN_EVENTS:
        return [
            insufficient("rhythm.peak_hours", "rhythm", "a daily rhythm", n, f"needs ≥ {MIN_EVENTS} {unit}")
        ]
    facts: list[Fact] = []
    hour, weekday = ev.hour[at], ev.weekday[at]
    hours = np.bincount(hour, minlength=24).astype(float)
    days = np.bincount(weekday, minlength=7).astype(float)
    hp, dp = hours / n, days / n
    # Peak hours: a smoothed 3-hour window picks a slot, not a lone noisy hour.
    window = hours + np.roll(hours, 1) + np.roll(hours, -1)
    top = [int(h) for h in np.argsort(-window, kind="stable")[:3] if window[h] > 0]
    peak = top[0]
    share = float(window[peak] / n)
    facts.append(
        Fact(
            "rhythm.peak_hours",
            "rhythm",
            f"Most active around {peak:02d}:00 {ctx.clock} ({share:.0%} of {unit} within an hour of it).",
            {"hour_distribution": hp.round(4).tolist(), "peaks": top, "peak_share": round(share, 3)},
            n,
            min(1.0, n / 50),
        )
    )
    top_days = [int(d) for d in np.argsort(-days, kind="stable")[:2]]
    facts.append(
        Fact(
            "rhythm.peak_days",
            "rhythm",
            f"Busiest days: {DAYS[top_days[0]]} and {DAYS[top_days[1]]}.",
            {"weekday_distribution": dp.round(4).tolist(), "top_days": top_days},
            n,
            min(1.0, n / 50),
        )
    )
    weekend = float(dp[5:].sum())
    lean = (
        "weekends"
        if weekend > 2 / 7 + 0.08
        else "weekdays"
        if weekend < 2 / 7 - 0.08
        else "no particular part"
    )
    facts.append(
        Fact(
            "rhythm.weekend_share",
            "rhythm",
            f"{weekend:.0%} of activity falls on weekends (leans to {lean} of the week).",
            {"weekend_share": round(weekend, 3), "lean": lean},
            n,
            min(1.0, n / 30),
        )
    )
    # Regularity: 1 - normalised entropy over the 168 hour-of-week slots.
    how = np.bincount(weekday * 24 + hour, minlength=168) / n
    reg = 1 - _entropy(how) / np.log2(min(168, n)) if n > 1 else 0.0
    level = "very regular" if reg > 0.5 else "fairly regular" if reg > 0.3 else "irregular"
    facts.append(
        Fact(
            "rhythm.regularity",
            "rhythm",
            f"Weekly schedule is {level} (regularity {reg:.2f} on a 0-1 scale, over {n} {unit}).",
            {"regularity": round(float(reg), 3), "hour_of_week": how.round(4).tolist()},
            n,
            min(1.0, n / 80),
        )
    )
    t = ev.ts.as_unit("ns").asi8 / 3.6e12  # hours
    all_gaps = np.diff(t)
    # In sittings the useful gap is the one between sittings (within one, ratings are seconds apart).
    gaps = np.diff(t[at]) if ctx.sessions else all_gaps
    if len(gaps):
        med = float(np.median(gaps))
        sessions = 1 + int((all_gaps > SESSION_GAP_H).sum())
        sittings = "sittings" if ctx.sessions else "outings"
        per_session = ev.n / sessions
        active_days = len(np.unique(ev.local.normalize()))
        facts.append(
            Fact(
                "rhythm.gaps",
                "rhythm",
                f"Typically {_fmt_hours(med)} between {unit}; {sessions} {sittings} "
                f"averaging {per_session:.1f} {events} over {active_days} active days.",
                {
                    "median_gap_h": round(med, 2),
                    "p90_gap_h": round(float(np.quantile(gaps, 0.9)), 2),
                    "sessions": sessions,
                    "events_per_session": round(per_session, 2),
                    "active_days": active_days,
                },
                n,
                min(1.0, n / 30),
            )
        )
    return facts


def _fmt_hours(h: float) -> str:
    if h < 1:
        return f"{h * 60:.0f} minutes"
    if h < 48:
        return f"{h:.1f} hours"
    return f"{h / 24:.1f} days"
