"""The rules fallback: understanding a turn without the LLM (server down, slow or circuit open).

The action is the first tool of the registry whose words the message has (agent/chat/tools: "why"
asks ``explain``, "not that one" ``reject``...), else ``recommend``; an ordinal, negated phrases,
novelty, a time and the domain's own arguments (a distance for places) are read by patterns; the
wish is the message with those taken out, and is grounded in the catalog by embedding like the
LLM's. Responses say ``understood_by: "rules"`` when this answered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agent.chat.intent import NEGATED, WHEN_CUES, TurnIntent, negated_phrases, words
from agent.chat.novelty import without_names
from domains.chat_args import ChatArgument

ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "top": 1,
}  # fmt: skip
ORDINAL = re.compile(
    r"\b(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|top)\b|#\s*(\d)\b|\bnumber\s+(\d)\b"
)
NEW = re.compile(r"\b(new|never been|haven'?t been|somewhere different|first time)\b", re.IGNORECASE)
FORGET = re.compile(
    r"\b(?:forget|drop|never mind|scratch)\s+(?:the\s+|about\s+(?:the\s+)?)?([\w'&-]+)", re.IGNORECASE
)


MEALS = re.compile(r"breakfast|brunch|lunch|lunchtime|dinner|supper", re.IGNORECASE)


def item_position(text: str) -> int:
    m = ORDINAL.search(text.lower())
    if not m:
        return 0
    return ORDINALS.get(m.group(1) or "", 0) or int(m.group(2) or m.group(3) or 0)


def rules_intent(message: str, tools: Any, domain_args: Sequence[ChatArgument] = ()) -> TurnIntent:
    """``tools``: the registry (its ``cued(message)`` names the tool the words ask for)."""
    text = message.strip()
    item = item_position(text)
    action = tools.cued(text)
    if action != "recommend":
        return TurnIntent(action=action, item=item)
    avoid = negated_phrases(text)
    forget = [m.group(1) for m in FORGET.finditer(text)]
    wish = FORGET.sub(" ", NEGATED.sub(" ", without_names(text)))
    for cue in (NEW, *WHEN_CUES.values()):
        # a meal is a time and a wish at once: "dinner" stays in the wish (restaurants)
        wish = cue.sub(lambda m: m.group(0) if MEALS.fullmatch(m.group(0)) else " ", wish)
    for arg in domain_args:
        strip = getattr(arg, "strip", None)
        if strip is not None:
            wish = strip(wish)
    wish = " ".join(re.sub(r"[^\w'&/ -]+", " ", wish).split())[:60]
    if not words(wish):  # only cue words and filler: no new wish, the earlier one stands
        wish = ""
    args = {a.name: v for a in domain_args if (v := a.from_rules(text)) != a.default}
    when = next((w for w, cue in WHEN_CUES.items() if cue.search(text)), "now")
    return TurnIntent(
        action="recommend",
        wish=wish,
        avoid=avoid[:3],
        forget=forget[:3],
        args=args,
        new_places="yes" if NEW.search(without_names(text)) else "same",
        when=when,  # type: ignore[arg-type]
    )
