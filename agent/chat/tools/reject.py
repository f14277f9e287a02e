"""``reject``: the person turns down a shown item; it is stored as feedback (hidden from them for a
while) and the search goes on without it.

Only the person's own words may write feedback: a rejection needs "not that one"-like words in the
message (an exclusion such as "no pizza" is a constraint on the search, never feedback on an item),
and it resolves to the item the conversation is about: the one they name by position, else the one
just explained, else the only one shown. When it is not clear which, the tool asks and writes
nothing. The reply says what was stored.
"""

from __future__ import annotations

import re

from agent.chat.intent import said
from agent.chat.rules import item_position
from agent.chat.state import ChatState
from agent.chat.tools.base import ToolResult, TurnDeps, pattern_cue
from agent.chat.tools.recommend import RECOMMEND
from core.nouns import Nouns

WORDS = re.compile(
    r"\b(not that one|not this one|don'?t like (?:it|that|this|the \w+ one)|"
    r"no thanks|not (?:the|that) \w+ one|skip (?:it|that|the \w+ one)|not for me|nah,? not)\b",
    re.IGNORECASE,
)
ASK_TASK = "Ask them which of the shown {items} they mean, by its number; do not suggest anything."


def target_of(deps: TurnDeps) -> str | None:
    """The shown item the rejection is about, or None when the conversation does not say: the
    one their words name by position ("not the second one") or by kind ("not the bar", if one
    shown item is of it), else the one just explained, else the only one shown. A position the
    model put in its form without such words does not count: after "why the second one?", "not
    that one" was read as item 1 and turned down the wrong place."""
    state = deps.state
    shown = state.shown
    pos = item_position(deps.message)
    if 1 <= pos <= len(shown):
        return shown[pos - 1].item_id
    by_kind = [s for s in shown if s.category and said(s.category, deps.message)]
    if len(by_kind) == 1:
        return by_kind[0].item_id
    if state.focus and any(s.item_id == state.focus for s in shown):
        return state.focus
    if len(shown) == 1:
        return shown[0].item_id
    return None


class Reject:
    name = "reject"
    needs_shown = True
    cue = staticmethod(pattern_cue(WORDS))

    def describe(self, nouns: Nouns) -> str:
        return f"they turn down a shown {nouns.item}"

    def run(self, deps: TurnDeps) -> ToolResult:
        state = deps.state
        if not WORDS.search(deps.message) or not state.shown or not state.last_recommendation:
            # nothing in their words turns an item down: a constraint, not feedback on an item
            deps.trace["reject"] = "no rejection words in the message: handled as a search"
            return RECOMMEND.run(deps)
        target = target_of(deps)
        if target is None:
            n = deps.nouns
            deps.trace["reject"] = "ambiguous: asked which item (nothing stored)"
            listing = "; ".join(f"{i}. {s.label}" for i, s in enumerate(state.shown, start=1))
            return ToolResult(
                results=f"They turn down one of the shown {n.items} without saying which: {listing}.",
                template=f"Which one do you mean? Tell me its number (1-{len(state.shown)}) and I won't "
                f"suggest it again.",
                task=ASK_TASK.format(items=n.items),
                state=state,
                n_items=len(state.shown),
                recommendation_id=state.last_recommendation,
                action="reject",
            )
        shown = next(s for s in state.shown if s.item_id == target)
        args = {
            "recommendation_id": state.last_recommendation,
            "item_id": target,
            "reason": deps.message[:500],
        }
        event_id = deps.call(
            "reject",
            args,
            lambda: deps.records.feedback(
                str(state.last_recommendation), deps.user.user_id, "rejected", target, deps.message[:500]
            ),
        )
        after = ChatState.from_dict(state.to_dict())
        after.rejected.append(target)
        after.written.append({"event_id": event_id, "item_id": target, "label": shown.label})
        out = RECOMMEND.run(
            deps,
            head=(
                f"They turned down {shown.label}; it will not be suggested again.\n",
                f"You turned down {shown.label}; I won't suggest it again "
                '(say "actually, that one was fine" to take it back).\n',
            ),
            state=after,
        )
        out.action = "reject"
        out.stored = (f"I won't suggest {shown.label} again (you turned it down).", shown.label)
        return out


REJECT = Reject()
