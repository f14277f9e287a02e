"""``explain``: why shown items were suggested, read back from their stored trace (the reasons and
the facts behind them), never made up anew."""

from __future__ import annotations

import re
from typing import Any

from agent.chat.present import EXPLAIN_TASK
from agent.chat.state import ChatState
from agent.chat.tools.base import ToolResult, TurnDeps, pattern_cue
from agent.explanations import reason_text
from core.errors import NotFoundError
from core.nouns import Nouns

WORDS = re.compile(r"\b(why|explain|how come|reason)\b", re.IGNORECASE)


def stored_reasons(deps: TurnDeps, recommendation_id: str, item_ids: list[str]) -> dict[str, Any]:
    records = deps.records
    with records.factory() as s:
        rec = records.trace(s, recommendation_id)
        if rec.user_id != deps.user.user_id:
            raise NotFoundError(f"no recommendation {recommendation_id!r}")
        exp = (rec.explanation or {}).get("items", {})
        facts = {f["id"]: f["statement"] for f in rec.facts or []}
        out = {}
        for iid in item_ids:
            e = exp.get(iid) or {}
            out[iid] = {
                "text": e.get("text", ""),
                "facts": [facts[f] for f in e.get("fact_ids", []) if f in facts],
                "fact_ids": e.get("fact_ids", []),
            }
        return {"items": out, "ranker": rec.ranker}


class Explain:
    name = "explain"
    needs_shown = True
    cue = staticmethod(pattern_cue(WORDS))

    def describe(self, nouns: Nouns) -> str:
        return f"they ask why a shown {nouns.item} was suggested"

    def run(self, deps: TurnDeps) -> ToolResult:
        state, intent = deps.state, deps.intent
        positions = [intent.item] if intent.item else list(range(1, min(3, len(state.shown)) + 1))
        targets = [(n, state.shown[n - 1]) for n in positions]
        item_ids = [t.item_id for _, t in targets]
        args = {"recommendation_id": state.last_recommendation, "item_ids": item_ids}
        info = deps.call(
            "explain", args, lambda: stored_reasons(deps, str(state.last_recommendation), item_ids)
        )
        lines, tlines = [], []
        for n, t in targets:
            e = info["items"].get(t.item_id, {})
            reason = reason_text(e.get("text", "")) or "it ranked highly"
            facts = "; ".join(e.get("facts", []))
            lines.append(f"{n}. {t.label}: {reason}" + (f" (facts: {facts})" if facts else ""))
            tlines.append(f"{n}. {t.label} — {reason}")
        new_state = ChatState.from_dict(state.to_dict())
        new_state.focus = targets[0][1].item_id if len(targets) == 1 else None  # "not that one" next
        return ToolResult(
            results=f"The {deps.nouns.items} they ask about, with the recorded reasons:\n" + "\n".join(lines),
            template="Why I suggested " + ("it" if len(tlines) == 1 else "these") + ":\n" + "\n".join(tlines),
            task=EXPLAIN_TASK,
            state=new_state,
            n_items=len(state.shown),
            recommendation_id=state.last_recommendation,
            ranker=info.get("ranker"),
            shown_kinds={s.category for s in state.shown if s.category},
            action="explain",
        )


EXPLAIN = Explain()
