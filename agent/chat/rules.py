"""The rules fallback: understanding a turn without the LLM (server down, slow or circuit open).

Regular expressions pick the action, an ordinal, negated phrases, distance and novelty; the wish is
the message with the negated phrases taken out, and is grounded in the catalog by embedding like
the LLM's. Responses say ``understood_by: "rules"`` when this answered.
"""

from __future__ import annotations

import re

from agent.chat.intent import DISTANCE_CUES, NEGATED, WHEN_CUES, TurnIntent, negated_phrases, words

EXPLAIN = re.compile(r"\b(why|explain|how come|reason)\b", re.IGNORECASE)
PROFILE = re.compile(
    r"\b(who am i|my profile|about me|what do you know|my habits|my routine)\b", re.IGNORECASE
)
REJECT = re.compile(
    r"\b(not that one|not this one|something else|another one|don'?t like|no thanks|not (?:the|that) "
    r"\w+ one|skip (?:it|that|the \w+ one))\b",
    re.IGNORECASE,
)
SMALLTALK = re.compile(
    r"^\W*(hi|hello|hey|thanks|thank you|ok|okay|great|cool|bye|good\w*)\W*$", re.IGNORECASE
)
ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "top": 1,
}  # fmt: skip
ORDINAL = re.compile(
    r"\b(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|top)\b|#\s*(\d)\b|\bnumber\s+(\d)\b"
)
CLOSER = re.compile(r"\b(closer|nearer|even closer)\b", re.IGNORECASE)
NEW = re.compile(r"\b(new|never been|haven'?t been|somewhere different|first time)\b", re.IGNORECASE)
FORGET = re.compile(
    r"\b(?:forget|drop|never mind|scratch)\s+(?:the\s+|about\s+(?:the\s+)?)?([\w'&-]+)", re.IGNORECASE
)


def _item(text: str) -> int:
    m = ORDINAL.search(text.lower())
    if not m:
        return 0
    return ORDINALS.get(m.group(1) or "", 0) or int(m.group(2) or m.group(3) or 0)


def rules_intent(message: str) -> TurnIntent:
    text = message.strip()
    item = _item(text)
    if PROFILE.search(text):
        return TurnIntent(action="profile")
    if EXPLAIN.search(text):
        return TurnIntent(action="explain", item=item)
    if REJECT.search(text):
        return TurnIntent(action="reject", item=item)
    if SMALLTALK.match(text):
        return TurnIntent(action="chat")
    avoid = negated_phrases(text)
    forget = [m.group(1) for m in FORGET.finditer(text)]
    wish = FORGET.sub(" ", NEGATED.sub(" ", text))
    for cue in (CLOSER, NEW, DISTANCE_CUES, *WHEN_CUES.values()):
        wish = cue.sub(" ", wish)
    wish = " ".join(re.sub(r"[^\w'&/ -]+", " ", wish).split())[:60]
    if not words(wish):  # only cue words and filler: no new wish, the earlier one stands
        wish = ""
    distance = "closer" if CLOSER.search(text) else "near" if DISTANCE_CUES.search(text) else "same"
    when = next((w for w, cue in WHEN_CUES.items() if cue.search(text)), "now")
    return TurnIntent(
        action="recommend",
        wish=wish,
        avoid=avoid[:3],
        forget=forget[:3],
        distance=distance,  # type: ignore[arg-type]
        new_places="yes" if NEW.search(text) else "same",
        when=when,  # type: ignore[arg-type]
    )
