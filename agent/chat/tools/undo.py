"""``undo``: the person takes back a rejection this conversation stored ("actually, that one was
fine"); the feedback is deleted and the item may be suggested again.

Only feedback this conversation wrote can be taken back here (the state lists it); the item is the
one their words name, else the latest. With nothing stored, it says so and changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from agent.chat.intent import said
from agent.chat.state import ChatState
from agent.chat.tools.base import ToolResult, TurnDeps, pattern_cue
from core.nouns import Nouns

WORDS = re.compile(
    r"\b(undo|take (?:it|that) back|changed? my mind|(?:that|it|this|the \w+)(?: one)? (?:was|is|'s) "
    r"(?:fine|ok|okay|good|alright)(?: after all)?|(?:bring|put) (?:it|that|the \w+ one) back|"
    r"suggest (?:it|that one) again)\b",
    re.IGNORECASE,
)
TASK = "Tell them in one short sentence what was taken back; suggest nothing."


def target_of(deps: TurnDeps) -> dict[str, Any] | None:
    """The stored feedback their words name (by the item's name), else the latest."""
    written = deps.state.written
    named = [w for w in written if said(w["label"], deps.message)]
    chosen = named or written
    return chosen[-1] if chosen else None


class Undo:
    name = "undo"
    needs_shown = False

    def describe(self, nouns: Nouns) -> str:
        return f"they take back turning down a {nouns.item} earlier in this conversation"

    cue = staticmethod(pattern_cue(WORDS))

    def run(self, deps: TurnDeps) -> ToolResult:
        state, n = deps.state, deps.nouns
        target = target_of(deps)
        if target is None:
            deps.trace["undo"] = "nothing stored in this conversation to take back"
            text = (
                f"You haven't turned down any {n.item} in this conversation, so there is nothing "
                "to take back."
            )
            return ToolResult(results=text, template=text, task=TASK, state=state, action="undo")
        ok = deps.call(
            "undo_feedback",
            {"event_id": target["event_id"], "item_id": target["item_id"]},
            lambda: deps.records.undo_feedback(deps.user.user_id, target["event_id"]),
        )
        after = ChatState.from_dict(state.to_dict())
        after.written = [w for w in after.written if w["event_id"] != target["event_id"]]
        after.rejected = [i for i in after.rejected if i != target["item_id"]]
        label = target["label"]
        if not ok:  # deleted meanwhile (e.g. through the API): say so rather than claim it
            text = (
                f"{label} is no longer turned down (that was already undone), so it can be suggested again."
            )
        else:
            text = f"Done: I took back turning down {label}; it can be suggested again."
        deps.trace["undo"] = {"item_id": target["item_id"], "deleted": ok}
        return ToolResult(
            results=text, template=text, task=TASK, state=after, action="undo", stored=(text, label)
        )


UNDO = Undo()
