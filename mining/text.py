"""Render the short profile text from facts only; every sentence keeps the ids it came from."""

from __future__ import annotations

from mining.facts import Fact

MAX_WORDS = 120
MIN_TEXT_CONFIDENCE = 0.2


def _get(facts: list[Fact], fid: str) -> Fact | None:
    f = next((x for x in facts if x.id == fid), None)
    # Weak evidence stays in the facts for support staff but is not narrated as if it were known.
    return f if f is not None and f.confidence >= MIN_TEXT_CONFIDENCE else None


def render_text(facts: list[Fact]) -> tuple[str, list[list[str]]]:
    sentences: list[tuple[str, list[str]]] = []
    summary = next((f for f in facts if f.id == "data.summary"), None)
    n = summary.value.get("events", 0) if summary and isinstance(summary.value, dict) else 0
    if n < 5:
        sentences.append((f"New user with only {n} event(s) so far; little is known yet.", ["data.summary"]))

    peak, days = _get(facts, "rhythm.peak_hours"), _get(facts, "rhythm.peak_days")
    if peak and days:
        from mining.rhythm import DAYS

        h = peak.value["peaks"][0]
        d = [DAYS[i] for i in days.value["top_days"]]
        sentences.append(
            (f"Most active around {h:02d}:00, busiest on {d[0]}s and {d[1]}s.", [peak.id, days.id])
        )
    home, work = _get(facts, "space.home"), _get(facts, "space.work")
    if home and work:
        sentences.append(
            (
                f"Nights are usually in {home.value['cluster']}, "
                f"weekday office hours in {work.value['cluster']}.",
                [home.id, work.id],
            )
        )
    elif home:
        sentences.append((f"Nights and weekend mornings are usually in {home.value['cluster']}.", [home.id]))
    gyr = _get(facts, "space.gyration")
    if gyr:
        sentences.append(
            (
                f"Moves within about {gyr.value['radius_of_gyration_km']:.0f} km "
                f"across {gyr.value['distinct_places']} places.",
                [gyr.id],
            )
        )
    habits = sorted((f for f in facts if f.kind == "habit" and f.sufficient), key=lambda f: -f.support)[:2]
    for hf in habits:
        sentences.append((hf.statement, [hf.id]))
    nxt = _get(facts, "trans.next")
    if nxt:
        sentences.append(
            (f"After {nxt.value['after']}, often goes on to {nxt.value['next'][0][0]}.", [nxt.id])
        )
    routes = _get(facts, "trans.places")
    if routes and routes.value.get("top_routes"):
        r = routes.value["top_routes"][0]
        sentences.append((f"Has a repeated route from place {r['from']} to place {r['to']}.", [routes.id]))
    drift = _get(facts, "drift.interests")
    if drift and (drift.value["emerging"] or drift.value["fading"]):
        sentences.append((drift.statement, [drift.id]))
    trend = _get(facts, "ts.trend")
    if trend and trend.value["direction"] != "steady":
        sentences.append((f"Overall activity is {trend.value['direction']}.", [trend.id]))
    senti = _get(facts, "sentiment.reviews")
    if senti:
        sentences.append((senti.statement, [senti.id]))

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
