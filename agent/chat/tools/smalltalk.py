"""``chat``: anything that is not a request (greetings, thanks, off-topic): a short answer that
offers to find items, and names none."""

from __future__ import annotations

import re

from agent.chat.tools.base import ToolResult, TurnDeps, pattern_cue
from core.nouns import Nouns

WORDS = re.compile(r"^\W*(hi|hello|hey|thanks|thank you|ok|okay|great|cool|bye|good\w*)\W*$", re.IGNORECASE)
TASK = (
    "It is not a request for {items}. Reply in one or two sentences and offer to find {items}; "
    "do not name or suggest any {item}."
)


class SmallTalk:
    name = "chat"
    needs_shown = False
    cue = staticmethod(pattern_cue(WORDS))

    def describe(self, nouns: Nouns) -> str:
        return "anything else (greetings, thanks, off-topic)"

    def run(self, deps: TurnDeps) -> ToolResult:
        n = deps.nouns
        return ToolResult(
            f"This message is not a request for {n.items}.",
            deps.domain.invitation,
            TASK.format(item=n.item, items=n.items),
            deps.state,
            action="chat",
        )


SMALLTALK = SmallTalk()
