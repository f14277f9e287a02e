"""Facts about how a user reacted to earlier recommendations, by kind of place.

Feedback events are not visits: they are split off before every other miner (a rejected place must
not become a habit) and summarised here: "Accepted 3 of 5 Coffee Shop suggestions." Only places
whose category is known are counted by kind; the rest are counted in the overall fact.
"""

from __future__ import annotations

import re

import pandas as pd

from core import columns as C
from mining.facts import Fact

MIN_REACTIONS = 2  # one reaction to a kind of place is an anecdote, not a fact about the person
KINDS = ("accepted", "clicked", "rejected")


def split_feedback(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(behaviour, feedback): the events the other miners read, and the reactions."""
    if C.KIND not in events or not len(events):
        return events, events.iloc[0:0]
    is_fb = (events[C.KIND] == "feedback").to_numpy()
    if not is_fb.any():
        return events, events.iloc[0:0]
    return events[~is_fb], events[is_fb]


def category_fact_id(category: str) -> str:
    """A stable id per kind of place: feedback.cat.coffee_shop."""
    return "feedback.cat." + (re.sub(r"[^a-z0-9]+", "_", category.strip().lower()).strip("_") or "other")


def feedback_facts(feedback: pd.DataFrame) -> list[Fact]:
    if not len(feedback) or C.FEEDBACK not in feedback:
        return []
    fb = feedback[feedback[C.FEEDBACK].isin(KINDS)]
    if not len(fb):
        return []
    total = {k: int((fb[C.FEEDBACK] == k).sum()) for k in KINDS}
    n = int(sum(total.values()))
    facts = [
        Fact(
            "feedback.summary",
            "feedback",
            f"Reacted to {n} suggestion(s): accepted {total['accepted']}, clicked {total['clicked']}, "
            f"rejected {total['rejected']}.",
            total,
            n,
            min(1.0, n / 5),
        )
    ]
    known = fb[fb[C.CATEGORY].notna()] if C.CATEGORY in fb else fb.iloc[0:0]
    for cat, rows in known.groupby(C.CATEGORY, sort=True):
        m = len(rows)
        if m < MIN_REACTIONS:
            continue
        got = {k: int((rows[C.FEEDBACK] == k).sum()) for k in KINDS}
        parts = [
            f"{verb} {got[k]} of {m}"
            for k, verb in (("accepted", "Accepted"), ("rejected", "rejected"))
            if got[k]
        ]
        if got["clicked"]:
            parts.append(f"opened {got['clicked']}")
        statement = (", ".join(parts) or f"Reacted to {m}") + f" {cat} suggestions."
        facts.append(
            Fact(
                category_fact_id(str(cat)),
                "feedback",
                statement[0].upper() + statement[1:],
                {"category": str(cat), "shown_with_reaction": m, **got},
                m,
                min(1.0, m / 5),
            )
        )
    return facts
