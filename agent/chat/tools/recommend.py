"""``recommend``: items for the person now, within the grounded wish, exclusions and the domain's
arguments (a distance for places, a decade for films). The default tool: a message no other
tool's words claim is a wish."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from agent.chat.present import NOTHING_TASK, RECOMMEND_TASK, item_out, results_for_items, template_for_items
from agent.chat.state import ChatState, ShownItem, apply, to_context
from agent.chat.tools.base import ToolResult, TurnDeps
from agent.pipeline import RecommendationResult, RecommendOptions
from core.nouns import Nouns

MORE = re.compile(
    r"\b(what else|anything else|something else|other (?:options|ideas|suggestions|ones)|any others?|"
    r"more (?:options|ideas|suggestions)|show me more|different ones)\b",
    re.IGNORECASE,
)
LLM_UNAVAILABLE_NOTE = (
    "the language model is unavailable right now, so rules understood this and a template answered"
)


class Recommend:
    name = "recommend"
    needs_shown = False

    def describe(self, nouns: Nouns) -> str:
        return f"they want {nouns.items}"

    def cue(self, message: str) -> bool:
        return True  # the default: any wish

    def run(
        self, deps: TurnDeps, head: tuple[str, str] = ("", ""), state: ChatState | None = None
    ) -> ToolResult:
        """``head``: what a rejection before this did, said to the reply's writer and to the
        person; ``state``: the state to search from (the rejection's), else the turn's."""
        before = state or deps.state
        new_state = apply(
            ChatState.from_dict(before.to_dict()),
            deps.intent,
            deps.grounder,
            deps.domain.chat_args(),
        )
        deps.trace["grounding"] = {
            "wish": new_state.wish,
            "categories": new_state.wish_categories,
            "avoid": new_state.avoid,
            "avoid_categories": new_state.avoid_categories,
        }
        ctx = to_context(new_state, deps.when, deps.args, deps.user.utc_offset_min, deps.domain)
        if MORE.search(deps.message) and before.shown:
            # "what else?": other items than those just shown, for this turn only (not feedback)
            shown = [s.item_id for s in before.shown]
            ctx = replace(ctx, exclude_items=tuple(dict.fromkeys([*ctx.exclude_items, *shown])))
            deps.trace["more"] = shown
        opts = RecommendOptions(
            explain=True,
            use_llm=deps.rerank,
            explain_with_llm=False,  # the reply is the LLM's explanation; items keep template reasons
            conversation_id=deps.conversation_id,
            trace_extra={"chat": deps.trace},
            session=deps.session if deps.rerank else None,
        )
        args: dict[str, Any] = {"context": ctx.to_dict(), "k": deps.k}
        result: RecommendationResult = deps.call(
            "recommend", args, lambda: deps.pipeline.run(deps.user.user_id, ctx, deps.k, opts, user=deps.user)
        )
        domain = deps.domain
        new_state.shown = [ShownItem(c.item_id, domain.title(c), c.category) for c in result.items]
        new_state.last_recommendation = result.recommendation_id
        new_state.focus = None
        explanations = result.explanation.items if result.explanation else {}
        note = LLM_UNAVAILABLE_NOTE if deps.llm_down else None
        search = new_state.summary(kinds=False, args=domain.describe_args(ctx.args))
        unapplied = not_applied(deps, before, new_state)
        said = "".join(f"{line[0].upper()}{line[1:]}.\n" for line in result.request_notes)
        said += "".join(f"{line}\n" for line in unapplied)
        return ToolResult(
            results=head[0] + said + results_for_items(result.items, explanations, search, domain),
            template=head[1] + said + template_for_items(result.items, explanations, search, domain, note),
            task=RECOMMEND_TASK.format(item=deps.nouns.item, items=deps.nouns.items)
            if result.items
            else NOTHING_TASK,
            state=new_state,
            items=[item_out(c, result, domain) for c in result.items],
            n_items=len(result.items),
            recommendation_id=result.recommendation_id,
            ranker=result.ranker,
            notes=list(result.notes) + unapplied,
            shown_kinds={k for c in result.items for k in (c.kinds or ((c.category,) if c.category else ()))},
            action="recommend",
        )


def not_applied(deps: TurnDeps, before: ChatState, after: ChatState) -> list[str]:
    """This turn's wish and exclusions that could not change the list, in words for the person:
    an exclusion that matched no kind left nothing out, and a wish with no kind and no text search
    narrowed nothing (a success that did nothing is said, not hidden)."""
    n = deps.nouns
    retriever = deps.pipeline.retriever
    has_kinds = bool(retriever.catalog_kinds())
    out = []
    grounded = {str(m.get("via", "")).partition(":")[2] for m in after.avoid_categories}
    missed = [a for a in after.avoid if a not in before.avoid and a not in grounded]
    if missed:
        words = ", ".join(f'"{a}"' for a in missed)
        why = f"no {n.kind} of this catalog matches it" if has_kinds else f"this catalog lists no {n.kinds}"
        out.append(f"I could not leave out {words}: {why}.")
    if after.wish and after.wish != before.wish and not after.wish_categories and retriever.index is None:
        why = f"no {n.kind} of this catalog matches it" if has_kinds else f"this catalog lists no {n.kinds}"
        out.append(
            f'"{after.wish}" could not narrow the list: {why} and there is no text search, '
            f"so these follow your usual {n.events}."
        )
    return out


RECOMMEND = Recommend()
