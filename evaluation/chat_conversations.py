"""``chronotope eval-chat --conversations``: scripted conversations that check what the chat DOES
with what a person says (evaluation/chat_conversations.yaml): the action and the item it is about,
feedback stored only when asked for (and taken back when asked), full lists for a kind wish, what
"New Yorker" or "no thanks" must not set, and claims in the LLM's replies that the served items do
not support. Each conversation runs for a user drawn from the dev targets, at their target's time,
with their history before it, through the chat agent exactly as served (LLM on or off as the
settings say).

Per turn: ``action_ok`` (and ``item_ok`` where a position is expected), ``unasked_feedback`` (rows
stored that the script did not ask for: must be 0), ``full`` (k items for a kind wish),
``understood`` (two of the top three in the accepted kinds), ``excluded_shown``, ``empty_unexplained``,
``false_claims`` (the reply's claims about single items judged against the items served, by
agent/chat/claims.py), latency.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import select

from agent.chat.claims import item_claims
from core import columns as C
from core.models import Event
from evaluation.dev_split import DevSplit, Query, user_input
from evaluation.world import World
from retrieval.serving_state import behaviour


@dataclass(frozen=True)
class Expect:
    say: str
    action: str | None = None
    item: int | None = None
    feedback: str | int | None = None  # "none", a position in the last list, or "undone"
    accept: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    new_only: bool | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[Expect, ...]


def default_path() -> Path:
    return Path(__file__).with_name("chat_conversations.yaml")


def load_conversations(path: Path | None = None) -> list[Conversation]:
    data = yaml.safe_load((path or default_path()).read_text())
    families = {k: list(v) for k, v in (data.get("families") or {}).items()}

    def kinds(names: list[str]) -> frozenset[str]:
        return frozenset(k for n in names or [] for k in families.get(n, [n]))

    out = []
    for c in data["conversations"]:
        turns = tuple(
            Expect(
                t["say"],
                t.get("action"),
                t.get("item"),
                t.get("feedback"),
                kinds(t.get("accept", [])),
                kinds(t.get("exclude", [])),
                t.get("new_only"),
            )
            for t in c["turns"]
        )
        out.append(Conversation(c["id"], turns))
    return out


@dataclass
class ConversationTurn:
    conversation: str
    turn: int
    say: str
    action: str
    action_ok: bool | None
    item_ok: bool | None
    feedback_ok: bool | None
    unasked_feedback: int
    full: bool | None
    understood: bool | None
    excluded_shown: list[str]
    empty_unexplained: bool
    false_claims: list[str]
    understood_by: str
    reply_source: str
    total_ms: float
    first_token_ms: float | None
    reply: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _feedback_rows(world: World, user_id: str) -> list[str]:
    with world.factory() as s:
        rows = s.scalars(select(Event.item_id).where(Event.user_id == user_id, Event.kind == "feedback"))
        return [str(r) for r in rows]


def run_conversations(
    world: World,
    split: DevSplit,
    conversations: list[Conversation],
    queries: list[Query],
    rng: random.Random,
    k: int,
    progress: Callable[[int], None] = lambda _n: None,
) -> list[ConversationTurn]:
    by_hist = {str(u): g for u, g in split.history.groupby(C.USER, sort=False)}
    by_test = {str(u): g for u, g in split.test.groupby(C.USER, sort=False)}
    out: list[ConversationTurn] = []
    for conv in conversations:
        progress(1)
        q = rng.choice(queries)
        world.retriever.set_history(q.user_id, behaviour(user_input(split, q, by_hist, by_test)))
        when = q.ts.to_pydatetime()
        conv_id: str | None = None
        last_list: list[str] = []
        for n, exp in enumerate(conv.turns, start=1):
            before = _feedback_rows(world, q.user_id)
            turn = world.chat.respond(q.user_id, exp.say, conv_id, when=when)
            conv_id = turn.conversation_id
            after = _feedback_rows(world, q.user_id)
            out.append(_judge(world, conv.id, n, exp, turn, last_list, before, after, k))
            out[-1].extra["user"] = q.user_id
            if turn.items:
                last_list = [i["item_id"] for i in turn.items]
    return out


def _judge(
    world: World,
    conv: str,
    n: int,
    exp: Expect,
    turn: Any,
    last_list: list[str],
    before: list[str],
    after: list[str],
    k: int,
) -> ConversationTurn:
    items = [i["item_id"] for i in turn.items]
    new = [i for i in after if i not in before or after.count(i) > before.count(i)]
    gone = [i for i in before if i not in after]
    want = last_list[exp.item - 1] if exp.item and len(last_list) >= exp.item else None
    if isinstance(exp.feedback, int):
        target = last_list[exp.feedback - 1] if len(last_list) >= exp.feedback else None
        feedback_ok = new == [target] if target else None
        unasked = len([i for i in new if i != target])
    elif exp.feedback == "undone":
        feedback_ok, unasked = bool(gone) and not new, len(new)
    else:
        feedback_ok, unasked = (not new if exp.feedback == "none" else None), len(new)
    cats = world.categories
    kind_wish = bool(exp.accept)
    lines = (
        "\n".join(
            f"{m}. {i['label']}: {', '.join(i.get('details') or [])}"
            for m, i in enumerate(turn.items, start=1)
        )
        + f"\nThe search: {turn.constraints.get('summary', '')}"
    )
    claims = (
        item_claims(turn.reply, lines, exp.say, superlatives=world.services.domain.superlatives)
        if turn.reply_source == "llm" and turn.items
        else []
    )
    return ConversationTurn(
        conv,
        n,
        exp.say,
        turn.action,
        (turn.action == exp.action) if exp.action else None,
        (turn.constraints.get("focus") == want or exp.action == "reject") if want and exp.action else None,
        feedback_ok,
        unasked,
        (len(items) == k) if kind_wish and turn.action == "recommend" else None,
        (sum(1 for i in items[:3] if cats.get(i) in exp.accept) >= 2) if kind_wish else None,
        [i for i in items if cats.get(i) in exp.exclude],
        turn.action == "recommend" and not items and not turn.notes,
        claims,
        turn.understood_by,
        turn.reply_source,
        turn.timings.get("total_ms", 0.0),
        turn.timings.get("first_token_ms"),
        turn.reply,
        {
            "new_only_wrong": exp.new_only is not None
            and bool(turn.constraints.get("new_only")) != exp.new_only,
            "kinds_shown": [cats.get(i) for i in items],
            "notes": turn.notes,
            "timings": turn.timings,  # understanding, tool, reply: where the turn's time went
        },
    )


def summarize_conversations(turns: list[ConversationTurn]) -> dict[str, Any]:
    def share(xs: list[bool | None]) -> float | None:
        vals = [x for x in xs if x is not None]
        return round(sum(vals) / len(vals), 4) if vals else None

    def pct(values: list[float], p: float) -> float | None:
        return round(float(np.percentile(values, p)), 1) if values else None

    recs = [t for t in turns if t.full is not None]
    return {
        "n_conversations": len({t.conversation for t in turns}),
        "n_turns": len(turns),
        "action right": share([t.action_ok for t in turns]),
        "action and item right": share(
            [t.action_ok and (t.item_ok is not False) if t.action_ok is not None else None for t in turns]
        ),
        "feedback as asked": share([t.feedback_ok for t in turns]),
        "unasked feedback stored (must be 0)": sum(t.unasked_feedback for t in turns),
        "kind wishes with a full list": share([t.full for t in recs]),
        "kind wishes understood (2 of top 3 in the family)": share([t.understood for t in turns]),
        "kind wishes full and understood": share(
            [bool(t.full and t.understood) if t.understood is not None else None for t in turns]
        ),
        "excluded kinds shown": sum(len(t.excluded_shown) for t in turns),
        "empty lists without a reason": sum(1 for t in turns if t.empty_unexplained),
        "'new' set from a name": sum(1 for t in turns if t.extra.get("new_only_wrong")),
        "false claims let through": sum(len(t.false_claims) for t in turns),
        "llm-understood turns": share([t.understood_by == "llm" for t in turns]),
        "llm-written replies": share([t.reply_source == "llm" for t in turns]),
        "latency_ms": {
            "turn_p50": pct([t.total_ms for t in turns], 50),
            "turn_p95": pct([t.total_ms for t in turns], 95),
            "first_token_p50": pct([t.first_token_ms for t in turns if t.first_token_ms is not None], 50),
            "first_token_p95": pct([t.first_token_ms for t in turns if t.first_token_ms is not None], 95),
            # the items are shown when the tool returns: the reply's first token is this much later
            "first_token_after_items_p50": pct(
                [
                    t.first_token_ms - t.extra["timings"]["understand_ms"] - t.extra["timings"]["tool_ms"]
                    for t in turns
                    if t.first_token_ms is not None and "understand_ms" in t.extra.get("timings", {})
                ],
                50,
            ),
            "understand_p50": pct([t.extra.get("timings", {}).get("understand_ms", 0.0) for t in turns], 50),
        },
        "failures": [
            {"conversation": t.conversation, "turn": t.turn, "say": t.say, "action": t.action}
            for t in turns
            if t.action_ok is False or t.feedback_ok is False or t.unasked_feedback or t.excluded_shown
        ][:30],
    }
