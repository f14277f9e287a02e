"""Render the short profile text from facts only; every sentence keeps the ids it came from.

The domain-neutral sentences come from here; a domain adds its own (``MiningPlan.sentences``:
home and work areas for places, how someone rates for films), placed after the rhythm sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.nouns import ITEMS, Nouns
from mining.facts import Fact
from mining.rhythm import DAYS

MAX_WORDS = 120
MIN_TEXT_CONFIDENCE = 0.2


def usable(facts: dict[str, Fact], fid: str) -> Fact | None:
    f = facts.get(fid)
    # Weak evidence stays in the facts for support staff but is not narrated as if it were known.
    return f if f is not None and f.confidence >= MIN_TEXT_CONFIDENCE else None


def render_text(
    facts: list[Fact], extra: Sequence[object] = (), nouns: Nouns = ITEMS, clock: str = "local time"
) -> tuple[str, list[list[str]]]:
    """``extra``: the domain's sentence rules ((facts by id) -> (sentence, ids) or None);
    ``clock``: "UTC" where the data carried no time zone (the hours are then said to be UTC)."""
    by_id = {f.id: f for f in facts}
    sentences: list[tuple[str, list[str]]] = []
    summary = by_id.get("data.summary")
    n = summary.value.get("events", 0) if summary and isinstance(summary.value, dict) else 0
    if n < 5:
        sentences.append(
            (f"New user with only {n} {nouns.event}(s) so far; little is known yet.", ["data.summary"])
        )
    peak, days = usable(by_id, "rhythm.peak_hours"), usable(by_id, "rhythm.peak_days")
    if peak and days:
        h = peak.value["peaks"][0]
        d = [DAYS[i] for i in days.value["top_days"]]
        sentences.append(
            (
                f"Most active around {h:02d}:00{' UTC' if clock == 'UTC' else ''}, "
                f"busiest on {d[0]}s and {d[1]}s.",
                [peak.id, days.id],
            )
        )
    for rule in extra:
        got = rule(by_id)  # type: ignore[operator]
        if got:
            sentences.append(got)
    habits = sorted((f for f in facts if f.kind == "habit" and f.sufficient), key=lambda f: -f.support)[:2]
    for hf in habits:
        sentences.append((hf.statement, [hf.id]))
    nxt = usable(by_id, "trans.next")
    if nxt:
        sentences.append(
            (f"After {nxt.value['after']}, often goes on to {nxt.value['next'][0][0]}.", [nxt.id])
        )
    routes = usable(by_id, "trans.places")
    if routes and routes.value.get("top_routes"):
        r = routes.value["top_routes"][0]
        sentences.append(
            (f"Has a repeated route from {nouns.item} {r['from']} to {nouns.item} {r['to']}.", [routes.id])
        )
    for fid in ("drift.interests",):
        drift = usable(by_id, fid)
        if drift and (drift.value["emerging"] or drift.value["fading"]):
            sentences.append((drift.statement, [drift.id]))
    trend = usable(by_id, "ts.trend")
    if trend and trend.value["direction"] != "steady":
        sentences.append((f"Overall activity is {trend.value['direction']}.", [trend.id]))
    for fid in ("sentiment.reviews",):
        senti = usable(by_id, fid)
        if senti:
            sentences.append((senti.statement, [senti.id]))
    return _fit(sentences)


def _fit(sentences: list[tuple[str, list[str]]]) -> tuple[str, list[list[str]]]:
    out_text: list[str] = []
    out_ids: list[list[str]] = []
    words = 0
    for s, ids in sentences:
        w = len(s.split())
        if words + w > MAX_WORDS:
            continue  # a shorter later sentence may still fit
        out_text.append(s)
        out_ids.append(ids)
        words += w
    return " ".join(out_text), out_ids
