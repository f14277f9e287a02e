"""build_profile: one user's events in, a UserProfile (facts + short text) out. Pure.

Which miners run, and the words they use, are the domain's (``MiningPlan``); the domain-neutral
plan below mines time alone (rhythm, trend and seasonality, habits by time slot, transitions,
interest drift) and says plainly when the events carry no locations.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from core import columns as C
from mining.drift import drift_facts
from mining.facts import MINER_VERSION, Fact, UserProfile
from mining.feedback import feedback_facts, split_feedback
from mining.frame import UserEvents, user_events
from mining.habits import habit_facts
from mining.plan import MiningContext, MiningPlan
from mining.rhythm import DAYS, rhythm_facts, session_starts
from mining.text import render_text
from mining.timeseries import timeseries_facts
from mining.transitions import GlobalStats, transition_facts

NEUTRAL_MINERS = (rhythm_facts, timeseries_facts, habit_facts, transition_facts, drift_facts)
NEUTRAL_PLAN = MiningPlan(NEUTRAL_MINERS)


def build_profile(
    events: pd.DataFrame,
    user_id: str,
    *,
    now: datetime | None = None,
    global_stats: GlobalStats | None = None,
    plan: MiningPlan = NEUTRAL_PLAN,
) -> UserProfile:
    """Mine one user's profile. ``events`` may hold other users' rows too (they are ignored).

    ``now`` drops events stamped after it (clock errors), reported in the ``data.summary`` fact.
    Feedback on recommendations is not behaviour: it only feeds the ``feedback.*`` facts."""
    events, reactions = split_feedback(events)
    ev, n_future = user_events(events, user_id, now)
    ctx = plan.context(global_stats)
    facts: list[Fact] = [summary_fact(ev, n_future, ctx)]
    if ev.n:
        for miner in plan.miners:
            facts += miner(ev, ctx)
        if not ev.has_coords.any():
            facts.append(no_locations_fact(ev, ctx))
    own = reactions.iloc[0:0]
    if len(reactions):
        own = reactions[reactions[C.USER].astype(str) == str(user_id)] if C.USER in reactions else reactions
        facts += feedback_facts(own)
    text, text_ids = render_text(facts, plan.sentences, plan.nouns, plan.clock)
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


def no_locations_fact(ev: UserEvents, ctx: MiningContext) -> Fact:
    return Fact(
        "data.locations",
        "data",
        f"No location data: none of the {ctx.nouns.events} carries a place, so nothing is said about where.",
        {"located_share": 0.0, "status": "no location data"},
        ev.n,
        1.0,
    )


def summary_fact(ev: UserEvents, n_future: int, ctx: MiningContext) -> Fact:
    nouns = ctx.nouns
    if ev.n == 0:
        note = f" ({n_future} {nouns.events} dated in the future were ignored)" if n_future else ""
        return Fact(
            "data.summary",
            "data",
            f"No usable {nouns.events} yet{note}.",
            {"events": 0, "future_ignored": n_future},
            0,
            0.0,
        )
    span_days = (ev.ts[-1] - ev.ts[0]).total_seconds() / 86400
    items = len({i for i in ev.item if i is not None})
    cats = len({c for c in ev.category if c is not None})
    sittings = len(session_starts(ev))
    first = ev.local[0]
    note = f"; {n_future} future-dated {nouns.events} ignored" if n_future else ""
    when = (
        f"in one sitting on {first.date().isoformat()}"
        if sittings == 1
        else f"over {span_days:.0f} days since {DAYS[first.weekday()]} {first.date().isoformat()}"
    )
    if ctx.sessions and sittings > 1:
        when += f", in {sittings} sittings"
    return Fact(
        "data.summary",
        "data",
        f"{nouns.count(ev.n, event=True)} {nouns.of} {nouns.count(items)} {when}{note}.",
        {
            "events": ev.n,
            "places": items,
            "items": items,
            "categories": cats,
            "span_days": round(span_days, 1),
            "sittings": sittings,
            "first": ev.ts[0].isoformat(),
            "last": ev.ts[-1].isoformat(),
            "future_ignored": n_future,
            "located_share": round(float(np.mean(ev.has_coords)), 3),
        },
        ev.n,
        1.0,
    )
