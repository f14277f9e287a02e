"""build_profile: one user's events in, a UserProfile (facts + short text) out. Pure."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from core import columns as C
from mining.drift import drift_facts
from mining.facts import MINER_VERSION, Fact, UserProfile
from mining.feedback import feedback_facts, split_feedback
from mining.frame import user_events
from mining.habits import habit_facts
from mining.rhythm import DAYS, rhythm_facts
from mining.sentiment import sentiment_facts
from mining.spatial import cluster_places, spatial_facts
from mining.text import render_text
from mining.timeseries import timeseries_facts
from mining.transitions import GlobalStats, transition_facts


def build_profile(
    events: pd.DataFrame,
    user_id: str,
    *,
    now: datetime | None = None,
    global_stats: GlobalStats | None = None,
    cluster_method: str = "dbscan",
) -> UserProfile:
    """Mine one user's profile. ``events`` may hold other users' rows too (they are ignored).

    ``now`` drops events stamped after it (clock errors), reported in the ``data.summary`` fact.
    Feedback on recommendations is not behaviour: it only feeds the ``feedback.*`` facts."""
    events, reactions = split_feedback(events)
    ev, n_future = user_events(events, user_id, now)
    facts: list[Fact] = [_summary(ev, n_future)]
    if ev.n:
        cl = cluster_places(ev, cluster_method)
        facts += rhythm_facts(ev)
        facts += timeseries_facts(ev)
        facts += spatial_facts(ev, cl)
        facts += habit_facts(ev, cl)
        facts += transition_facts(ev, global_stats)
        facts += drift_facts(ev)
        facts += sentiment_facts(ev)
    own = reactions.iloc[0:0]
    if len(reactions):
        own = reactions[reactions[C.USER].astype(str) == str(user_id)] if C.USER in reactions else reactions
        facts += feedback_facts(own)
    text, text_ids = render_text(facts)
    return UserProfile(
        user_id=str(user_id),
        facts=facts,
        text=text,
        n_events=ev.n,
        last_event_ts=ev.ts[-1].to_pydatetime() if ev.n else None,
        miner_version=MINER_VERSION,
        text_fact_ids=text_ids,
        reactions=f"{len(own)}@{pd.to_datetime(own[C.TIME], utc=True).max().isoformat()}" if len(own) else "",
    )


def _summary(ev, n_future: int) -> Fact:  # type: ignore[no-untyped-def]
    if ev.n == 0:
        note = f" ({n_future} events dated in the future were ignored)" if n_future else ""
        return Fact(
            "data.summary",
            "data",
            f"No usable events yet{note}.",
            {"events": 0, "future_ignored": n_future},
            0,
            0.0,
        )
    span_days = (ev.ts[-1] - ev.ts[0]).total_seconds() / 86400
    places = len({i for i in ev.item if i is not None})
    cats = len({c for c in ev.category if c is not None})
    first = ev.local[0]
    note = f"; {n_future} future-dated events ignored" if n_future else ""
    return Fact(
        "data.summary",
        "data",
        f"{ev.n} events at {places} places over {span_days:.0f} days since {DAYS[first.weekday()]} "
        f"{first.date().isoformat()}{note}.",
        {
            "events": ev.n,
            "places": places,
            "categories": cats,
            "span_days": round(span_days, 1),
            "first": ev.ts[0].isoformat(),
            "last": ev.ts[-1].isoformat(),
            "future_ignored": n_future,
            "located_share": round(float(ev.has_coords.mean()), 3),
        },
        ev.n,
        1.0,
    )
