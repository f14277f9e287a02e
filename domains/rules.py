"""The domain-neutral evidence rules, strongest first: what any item's explanation may cite.

Each rule reads the ``Scene`` (the person's usable facts, the item, the moment) and returns the
evidence it finds, worded by the domain's ``Phrases``. A domain lists the rules it uses, in order,
adding its own (domains/places/evidence.py, domains/films/evidence.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from domains.evidence import (
    SLOT_NAMES,
    SLOT_PARTS,
    Evidence,
    ItemEvidence,
    Rule,
    Scene,
    gather,
    slot_of,
)
from domains.naming import a, visits_phrase
from mining import Fact
from mining.feedback import category_fact_id
from mining.rhythm import DAYS

# -- the domain-neutral rules, in the order of strength ------------------------------------------


def had_before(s: Scene) -> Evidence | None:
    if not s.visits:
        return None
    return Evidence(
        "item.visits",
        s.say("had", times=visits_phrase(s.visits)),
        frozenset({str(s.visits)}),
        topics=frozenset({"visits"}),
    )


def route_to_it(s: Scene) -> Evidence | None:
    """A repeated route of theirs that ends at this item, else their own steps from the latest one."""
    routes = s.fact("trans.places")
    for r in routes.value.get("top_routes", []) if routes else []:
        if str(r.get("to")) == s.c.item_id and r.get("count"):
            origin = s.name_of(str(r.get("from"))) or f"another of your {s.nouns.items}"
            return Evidence(
                "trans.places",
                s.say("route", origin=a(origin), count=r["count"]),
                frozenset({str(r["count"])}),
                kinds=frozenset({origin}),
                topics=frozenset({"route", "visits"}),
            )
    own = round(s.c.features.get("user_trans_count", 0))
    if not own:
        return None
    last = s.last_kind
    frm = f" ({a(last)})" if last else ""
    return Evidence(
        "item.route",
        s.say("own_route", frm=frm, times=visits_phrase(own)),
        frozenset({str(own)}),
        kinds=frozenset({last} if last else set()),
        topics=frozenset({"route"}),
    )


# (scene, the habit's fact, its slot's words, parts of the day) -> a domain's further reading of a
# habit in the request's slot (places: the area it is usually in)
SlotExtra = Callable[[Scene, Fact, str, frozenset[str]], Evidence | None]


def slot_habits(extra: SlotExtra | None = None) -> Rule:
    def rule(s: Scene) -> list[Evidence]:
        return slot_habit(s, extra)

    return rule


def slot_habit(s: Scene, extra: SlotExtra | None = None) -> list[Evidence]:
    """A time-slot habit at this very item, or of its kind (else the domain's ``extra``) when the
    request falls in that slot."""
    out = []
    now = slot_of(s.moment.local)
    for sid, label in SLOT_NAMES.items():
        f = s.fact(f"habit.{sid}")
        if f is None:
            continue
        v = f.value
        parts = frozenset(SLOT_PARTS.get(sid, set()))
        if str(v.get("item")) == s.c.item_id and v.get("item_share"):
            n_slot = int(v.get("events", 0))
            k = round(float(v["item_share"]) * n_slot)
            out.append(
                Evidence(
                    f.id,
                    s.say("slot_item", label=label, k=k, n=n_slot),
                    frozenset({str(k), str(n_slot)}),
                    parts=parts,
                    topics=frozenset({"habit", "visits"}),
                )
            )
        elif sid == now and s.c.category and v.get("category") == s.c.category:
            out.append(
                Evidence(
                    f.id,
                    s.say("slot_kind", label=label, kind=s.c.category),
                    parts=parts,
                    kinds=frozenset({s.c.category}),
                    topics=frozenset({"habit"}),
                )
            )
        elif sid == now and extra is not None and (more := extra(s, f, label, parts)) is not None:
            out.append(more)
    return out


def usual_next(s: Scene) -> Evidence | None:
    nxt = s.fact("trans.next")
    if nxt is None or not s.c.category:
        return None
    cats = [str(x[0]) for x in nxt.value.get("next", [])]
    after = str(nxt.value.get("after", ""))
    if s.c.category not in cats or not after:
        return None
    return Evidence(
        "trans.next",
        s.say("next_kind", after=a(after), kind=s.c.category),
        kinds=frozenset({after, s.c.category}),
        topics=frozenset({"route"}),
    )


def rising_interest(s: Scene) -> Evidence | None:
    drift = s.fact("drift.interests")
    kinds = set(s.c.kinds) | ({s.c.category} if s.c.category else set())
    for e in drift.value.get("emerging", []) if drift else []:
        key = str(e.get("key"))
        if key == s.c.item_id or key in kinds:
            what = s.say("this_item") if key == s.c.item_id else f"{key} {s.nouns.items}"
            early, recent = round(100 * float(e["early"])), round(100 * float(e["recent"]))
            return Evidence(
                "drift.interests",
                s.say("rising", what=what, early=early, recent=recent),
                frozenset({str(early), str(recent)}),
                kinds=frozenset({key} if key != s.c.item_id else set()),
                topics=frozenset({"trend"}),
            )
    return None


def active_now(s: Scene) -> list[Evidence]:
    out = []
    peaks = s.fact("rhythm.peak_hours")
    hour = s.moment.local.hour + s.moment.local.minute / 60
    for p in peaks.value.get("peaks", [])[:2] if peaks else []:
        if min(abs(hour - p), 24 - abs(hour - p)) <= 1.0:
            out.append(
                Evidence(
                    "rhythm.peak_hours",
                    f"You are most active around {int(p):02d}:00, close to now.",
                    frozenset({f"{int(p):02d}:00", str(int(p))}),
                    topics=frozenset({"time"}),
                )
            )
            break
    days = s.fact("rhythm.peak_days")
    if days is not None:
        top = [DAYS[int(d)] for d in days.value.get("top_days", [])[:2]]
        today = DAYS[s.moment.local.weekday()]
        if today in top:
            out.append(
                Evidence(
                    "rhythm.peak_days",
                    f"{today} is one of your busiest days.",
                    days=frozenset({today}),
                    topics=frozenset({"time"}),
                )
            )
    return out


def liked_kind(s: Scene) -> Evidence | None:
    """ "You accepted 3 of 5 Coffee Shop suggestions." when they accepted more of that kind than
    they rejected (mining.feedback); a kind they mostly reject is never offered as a reason."""
    category = s.c.category
    fact = s.facts.get(category_fact_id(category)) if category else None
    v = fact.value if fact is not None and isinstance(fact.value, dict) else None
    if fact is None or v is None or not v.get("accepted", 0) > v.get("rejected", 0):
        return None
    got, m = int(v["accepted"]), int(v["shown_with_reaction"])
    return Evidence(
        fact.id,
        f"You accepted {got} of {m} {category} suggestions.",
        frozenset({str(got), str(m)}),
        kinds=frozenset({str(category)}),
        topics=frozenset({"feedback"}),
    )


def usual_hour(s: Scene) -> Evidence | None:
    if s.visits >= 2 and s.c.features.get("user_hour_affinity_share", 0) >= 0.5:
        return Evidence(
            "item.hour",
            s.say("usual_hour"),
            topics=frozenset({"time", "visits"}),
        )
    return None


def others_next(s: Scene) -> Evidence | None:
    last = s.last_kind
    if s.c.features.get("global_trans_prob", 0) >= 0.05 and last:
        return Evidence(
            "item.others_next",
            s.say("others_next", last=a(last)),
            kinds=frozenset({last}),
            topics=frozenset({"route", "popular"}),
        )
    return None


def similar_people(s: Scene) -> Evidence | None:
    if "collaborative" in s.c.sources or s.c.features.get("user_knn_rank_score", 0) >= 0.5:
        return Evidence(
            "item.similar_people",
            s.say("similar"),
            topics=frozenset({"similar"}),
        )
    return None


def new_to_them(s: Scene) -> Evidence | None:
    if s.visits:
        return None
    return Evidence("item.new", s.say("new"), topics=frozenset({"new"}))


NEUTRAL_RULES: tuple[Rule, ...] = (
    had_before,
    route_to_it,
    slot_habits(),
    usual_next,
    rising_interest,
    active_now,
    liked_kind,
    usual_hour,
    others_next,
    similar_people,
    new_to_them,
)


def item_evidence(scene: Scene, rules: Sequence[Rule], kind: str) -> ItemEvidence:
    """The evidence for ``scene.c`` and what is true of the item itself."""
    found = gather(scene, rules)
    c = scene.c
    return ItemEvidence(
        c.item_id,
        kind,
        c.category,
        scene.visits,
        found,
        frozenset({str(scene.visits)}) if scene.visits else frozenset(),
        frozenset({"visits"} if scene.visits else {"new"}),
        frozenset(k.lower() for k in c.kinds),
    )
