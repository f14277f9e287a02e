"""``chronotope eval-chat``: a scripted user talks to the real chat agent over the dev split.

For each sampled dev target (the last check-in of an NYC_val trajectory, as in ``chronotope
eval``), the user states a wish derived from the target's category in everyday words, from the
bank in evaluation/chat_wishes.yaml (never the category's own name); sometimes with an exclusion
in the same message, sometimes followed by a second turn (closer, somewhere new, "not that one",
"why the first?", "what do you know about me?"). The agent runs exactly as served: the LLM (or
the rules, when it is down) understands, the catalog grounding, the feature ranker, the reply.
The user's input is the history plus their test rows before the target; nothing of the target
reaches the agent except the wish.

Reported: hit@k / MRR@k of the first turn against the same ranker without the message and
against the ranker restricted to the wished categories (an oracle for understanding); the share
of turns understood (top 3 shown in the wished categories); constraint violations (excluded
kinds or rejected places shown: must be 0); replies naming only shown places; the share of
replies the LLM wrote; latency to the first reply token and of the whole turn. The bank's open
requests (many kinds, dev and holdout halves) are run for users drawn from the same targets.

Caveat (the dataset README's leak rule): in this data only POIs that occur in NYC_val have a
category, so a category filter also narrows to val POIs. The oracle line measures that effect;
compare the conversation with it as well as with the no-message ranker.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from agent.chat.agent import ChatTurn
from agent.pipeline import RecommendOptions
from core import columns as C
from evaluation.chat_bank import WishBank
from evaluation.dev_split import DevSplit, Query, user_input
from evaluation.world import World
from retrieval.serving_state import behaviour
from retrieval.types import RequestContext

SCRIPTS = ("wish", "wish+exclusion", "wish+followup")
SCRIPT_WEIGHTS = (0.5, 0.25, 0.25)


def _rank(items: list[str], target: str) -> int:
    return items.index(target) + 1 if target in items else 0


def _top3_in(turn_items: list[str], cats: dict[str, str | None], accept: frozenset[str]) -> bool:
    top = turn_items[:3]
    return bool(top) and all(cats.get(i) in accept for i in top)


def names_only_shown(
    reply: str, shown: list[str], cats: dict[str, str | None], message: str, catalog_cats: set[str]
) -> bool:
    """An independent check of the reply (not the guard's code): every catalog category it names
    is a shown place's category (or a broader name for one) or in ``message`` (the user's words
    and the wish the turn searched for), and no place id outside the shown ones appears."""
    import re

    low = reply.lower()
    shown_cats = {str(cats.get(i)).lower() for i in shown}
    shown_words = [set(re.findall(r"\w+", c)) for c in shown_cats]
    for c in sorted(catalog_cats, key=len, reverse=True):
        pat = re.compile(r"(?<!\w)" + re.escape(c.lower()) + r"(?!\w)")
        if pat.search(low):
            broader = any(set(re.findall(r"\w+", c.lower())) <= ws for ws in shown_words)  # "restaurant"
            if c.lower() not in shown_cats and c.lower() not in message.lower() and not broader:
                return False
            low = pat.sub(" ", low)
    return all(pid in shown for pid in re.findall(r"\bplace (\d+)\b", low))


@dataclass
class TurnRecord:
    script: str
    message: str
    action: str
    understood_by: str
    reply_source: str
    items: list[str]
    first_token_ms: float | None
    total_ms: float
    names_only_shown: bool
    violation: str | None = None
    understood: bool | None = None
    hit: int | None = None  # rank of the target among the shown items (0: not shown)
    followup_ok: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _turn_record(
    world: World, script: str, message: str, turn: ChatTurn, catalog_cats: set[str]
) -> TurnRecord:
    items = [i["item_id"] for i in turn.items]
    # Only turns that show places can name places; a profile or explanation reply may name the
    # kinds of place the user's habits involve.
    places_turn = turn.action in ("recommend", "reject")
    only_shown = (
        names_only_shown(
            turn.reply, items, world.categories, f"{message} {turn.constraints.get('wish', '')}", catalog_cats
        )
        if places_turn
        else True
    )
    return TurnRecord(
        script,
        message,
        turn.action,
        turn.understood_by,
        turn.reply_source,
        items,
        turn.timings.get("first_token_ms"),
        turn.timings.get("total_ms", 0.0),
        only_shown,
        # a flagged reply is kept whole, so a reader can judge the independent check's verdict
        extra={}
        if only_shown
        else {"reply": turn.reply, "shown_kinds": [world.categories.get(i) for i in items]},
    )


def run_targets(
    world: World,
    split: DevSplit,
    bank: WishBank,
    queries: list[Query],
    rng: random.Random,
    k: int,
    progress: Callable[[int], None] = lambda _n: None,
) -> tuple[list[dict[str, Any]], list[TurnRecord]]:
    by_hist = {str(u): g for u, g in split.history.groupby(C.USER, sort=False)}
    by_test = {str(u): g for u, g in split.test.groupby(C.USER, sort=False)}
    catalog_cats = {c for c in world.categories.values() if isinstance(c, str)}
    rows: list[dict[str, Any]] = []
    turns: list[TurnRecord] = []
    for q in queries:
        progress(1)
        target_cat = world.categories.get(q.target_item)
        cw = bank.categories.get(target_cat or "")
        if cw is None:
            continue
        inp = behaviour(user_input(split, q, by_hist, by_test))
        world.serve_history(q.user_id, inp)
        when: datetime = q.ts.to_pydatetime()
        plain = RecommendOptions(explain=False, use_llm=False)
        base = world.pipeline.run(q.user_id, RequestContext(time=when), k, plain)
        oracle = world.pipeline.run(
            q.user_id, RequestContext(time=when, include_kinds=tuple(cw.accept)), k, plain
        )
        script = rng.choices(SCRIPTS, SCRIPT_WEIGHTS)[0]
        message = rng.choice(cw.wishes)
        excluded: frozenset[str] = frozenset()
        if script == "wish+exclusion":
            options = [
                e
                for e in bank.exclusions
                if target_cat not in e.categories and not (e.categories >= cw.accept)
            ]
            ex = rng.choice(options)
            message, excluded = f"{message}, {ex.text}", ex.categories
        turn = world.chat.respond(q.user_id, message, None, when=when)
        rec = _turn_record(world, script, message, turn, catalog_cats)
        rec.hit = _rank(rec.items, q.target_item)
        rec.understood = _top3_in(rec.items, world.categories, cw.accept)
        bad = [i for i in rec.items if world.categories.get(i) in excluded]
        rec.violation = f"excluded kind shown: {bad}" if bad else None
        turns.append(rec)
        row = {
            "user": q.user_id,
            "target": q.target_item,
            "category": target_cat,
            "script": script,
            "message": message,
            "rank_chat": rec.hit,
            "rank_base": _rank([c.item_id for c in base.items], q.target_item),
            "rank_oracle": _rank([c.item_id for c in oracle.items], q.target_item),
            "understood": rec.understood,
        }
        if script == "wish+followup":
            f = rng.choice(bank.followups)
            turn2 = world.chat.respond(q.user_id, f.text, turn.conversation_id, when=when)
            r2 = _turn_record(world, f"followup:{f.kind}", f.text, turn2, catalog_cats)
            r2.followup_ok, r2.violation = _followup_ok(f.kind, rec.items, turn2, inp, world)
            r2.understood = (
                _top3_in(r2.items, world.categories, cw.accept) if f.kind in ("closer", "new") else None
            )
            turns.append(r2)
            row["followup"] = f.kind
            row["followup_ok"] = r2.followup_ok
        rows.append(row)
    return rows, turns


def _followup_ok(
    kind: str, first: list[str], turn: ChatTurn, inp: pd.DataFrame, world: World
) -> tuple[bool, str | None]:
    items = [i["item_id"] for i in turn.items]
    if kind == "closer":
        args = turn.constraints.get("args") or {}
        return turn.action == "recommend" and args.get("max_distance_km") is not None, None
    if kind == "new":
        visited = set(inp[C.ITEM].astype(str))
        bad = [i for i in items if i in visited]
        ok = turn.constraints.get("new_only") is True
        return ok, (f"visited places shown after 'somewhere new': {bad}" if ok and bad else None)
    if kind.startswith("reject_"):
        pos = 0 if kind == "reject_first" else 1
        if len(first) <= pos:
            return False, None
        gone = first[pos] not in items
        rejected = first[pos] in turn.constraints.get("rejected", [])
        return turn.action == "reject" and rejected, (
            None if gone or not rejected else f"rejected place shown again: {first[pos]}"
        )
    if kind.startswith("explain_"):
        return turn.action == "explain", None
    if kind == "profile":
        return turn.action == "profile", None
    return False, None


def run_requests(
    world: World,
    split: DevSplit,
    bank: WishBank,
    queries: list[Query],
    which: str,
    rng: random.Random,
    progress: Callable[[int], None] = lambda _n: None,
) -> list[TurnRecord]:
    by_hist = {str(u): g for u, g in split.history.groupby(C.USER, sort=False)}
    by_test = {str(u): g for u, g in split.test.groupby(C.USER, sort=False)}
    catalog_cats = {c for c in world.categories.values() if isinstance(c, str)}
    out = []
    for req in bank.requests:
        if which != "all" and req.split != which:
            continue
        progress(1)
        q = rng.choice(queries)
        inp = behaviour(user_input(split, q, by_hist, by_test))
        world.retriever.set_history(q.user_id, inp)
        turn = world.chat.respond(q.user_id, req.text, None, when=q.ts.to_pydatetime())
        rec = _turn_record(world, f"request:{req.kind}:{req.split}", req.text, turn, catalog_cats)
        rec.understood = _top3_in(rec.items, world.categories, req.accept)
        bad = [i for i in rec.items if world.categories.get(i) in req.exclude]
        rec.violation = f"excluded kind shown: {bad}" if bad else None
        rec.extra = {**rec.extra, "kind": req.kind, "split": req.split, "lang": req.lang}
        out.append(rec)
    return out


def _pct(values: list[float], p: float) -> float | None:
    return round(float(np.percentile(values, p)), 1) if values else None


def summarize(
    rows: list[dict[str, Any]], turns: list[TurnRecord], requests: list[TurnRecord], k: int
) -> dict[str, Any]:
    def hit_mrr(col: str) -> dict[str, float]:
        ranks = np.array([r[col] for r in rows], dtype=float)
        if not len(ranks):
            return {f"hit@{k}": 0.0, f"mrr@{k}": 0.0}
        return {
            f"hit@{k}": round(float((ranks > 0).mean()), 4),
            f"mrr@{k}": round(float(np.where(ranks > 0, 1 / np.maximum(ranks, 1), 0).mean()), 4),
        }

    every = turns + requests
    firsts = [t for t in turns if not t.script.startswith("followup")]
    follow = [t for t in turns if t.script.startswith("followup")]

    def share(xs: list[Any]) -> float | None:
        return round(sum(1 for x in xs if x) / len(xs), 4) if xs else None

    def by_split(split: str) -> dict[str, Any]:
        rs = [r for r in requests if r.extra.get("split") == split]
        return {
            "n": len(rs),
            "understood": share([r.understood for r in rs]),
            "llm_understood": share([r.understood_by == "llm" for r in rs]),
            "by_kind": {
                kind: share([r.understood for r in rs if r.extra["kind"] == kind])
                for kind in sorted({r.extra["kind"] for r in rs})
            },
        }

    return {
        "n_targets": len(rows),
        "n_turns": len(every),
        "conversation": hit_mrr("rank_chat"),
        "ranker_without_message": hit_mrr("rank_base"),
        "ranker_in_wished_categories (oracle)": hit_mrr("rank_oracle"),
        "understood (top 3 in wished kinds), first turns": share([t.understood for t in firsts]),
        "understood after a follow-up (closer/new)": share(
            [t.understood for t in follow if t.understood is not None]
        ),
        "follow-ups acted on": share([t.followup_ok for t in follow]),
        "constraint violations": sum(1 for t in every if t.violation),
        "violations": [t.violation for t in every if t.violation][:20],
        "replies naming only shown places": share([t.names_only_shown for t in every]),
        "llm-written replies": share([t.reply_source == "llm" for t in every]),
        "llm-understood turns": share([t.understood_by == "llm" for t in every]),
        "open requests": {"dev": by_split("dev"), "holdout": by_split("holdout")},
        "latency_ms": {
            "first_token_p50": _pct([t.first_token_ms for t in every if t.first_token_ms is not None], 50),
            "first_token_p95": _pct([t.first_token_ms for t in every if t.first_token_ms is not None], 95),
            "turn_p50": _pct([t.total_ms for t in every], 50),
            "turn_p95": _pct([t.total_ms for t in every], 95),
        },
    }
