"""Time-slot habits: which kind of item (and, where the domain names areas, which area) at which
time slot, and how they shift."""

from __future__ import annotations

import numpy as np

from mining.facts import Fact
from mining.frame import UserEvents
from mining.plan import MiningContext

# (id, label, predicate on (weekday, hour))
SLOTS = (
    ("wd_morning", "weekday mornings (6-10h)", lambda wd, h: (wd < 5) & (h >= 6) & (h < 10)),
    ("wd_midday", "weekday middays (11-14h)", lambda wd, h: (wd < 5) & (h >= 11) & (h < 14)),
    ("wd_evening", "weekday evenings (17-21h)", lambda wd, h: (wd < 5) & (h >= 17) & (h < 21)),
    ("we_day", "weekend daytime (10-18h)", lambda wd, h: (wd >= 5) & (h >= 10) & (h < 18)),
    ("night", "late nights (21-3h)", lambda wd, h: (h >= 21) | (h < 3)),
)
MIN_SLOT_EVENTS = 3
MIN_SHARE = 0.34


def _mode(values: np.ndarray) -> tuple[object, int] | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if not vals:
        return None
    uniq, counts = np.unique(np.array(vals, dtype=object).astype(str), return_counts=True)
    i = int(np.argmax(counts))
    return uniq[i], int(counts[i])


def slot_of(weekday: np.ndarray, hour: np.ndarray) -> np.ndarray:
    out = np.full(len(hour), "", dtype=object)
    for sid, _, pred in SLOTS:
        out[(out == "") & pred(weekday, hour)] = sid
    return out


def habit_facts(ev: UserEvents, ctx: MiningContext | None = None) -> list[Fact]:
    ctx = ctx or MiningContext()
    nouns = ctx.nouns
    facts: list[Fact] = []
    area = ctx.areas if ctx.areas is not None else np.full(ev.n, None, dtype=object)
    half = ev.n // 2
    for sid, label, pred in SLOTS:
        sel = pred(ev.weekday, ev.hour)
        n = int(sel.sum())
        if n < MIN_SLOT_EVENTS:
            continue
        parts, value = [], {"slot": sid, "events": n}
        a = _mode(area[sel])
        if a and a[1] / n >= MIN_SHARE:
            parts.append(f"in {a[0]}")
            value["area"], value["area_share"] = a[0], round(a[1] / n, 3)
        c = _mode(ev.category[sel])
        if c and c[1] >= 2 and c[1] / n >= MIN_SHARE * 0.6:
            parts.append(f"mostly {nouns.at}{c[0]} {nouns.items}")
            value["category"], value["category_share"] = c[0], round(c[1] / n, 3)
        it = _mode(ev.item[sel])
        if it and it[1] >= 2 and it[1] / n >= MIN_SHARE:
            value["item"], value["item_share"] = it[0], round(it[1] / n, 3)
            parts.append(f"often the same {nouns.item} ({it[1]} of {n} {nouns.events})")
        if not parts:
            continue
        # Shift between periods: the slot's top category/area in the first vs the second half.
        early, late = sel.copy(), sel.copy()
        early[half:], late[:half] = False, False
        for key, arr in (("category", ev.category), ("area", area)):
            e, l_ = _mode(arr[early]), _mode(arr[late])
            if e and l_ and e[0] != l_[0] and e[1] >= 2 and l_[1] >= 2:
                value[f"{key}_shift"] = {"from": e[0], "to": l_[0]}
        # Hours on a clock the data did not give (UTC) are said to be UTC: a reader must not take
        # "(17-21h)" for their own evening.
        said = label.replace("h)", "h UTC)") if ctx.clock == "UTC" else label
        statement = f"On {said}: " + ", ".join(parts) + "."
        if "category_shift" in value:
            sh = value["category_shift"]
            statement += f" Lately {sh['to']} rather than {sh['from']}."  # type: ignore[index]
        facts.append(Fact(f"habit.{sid}", "habit", statement, value, n, min(1.0, n / 15)))
    return facts
