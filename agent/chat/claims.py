"""Claims a chat reply makes about one shown item, checked against that item (not the whole list),
and slips into the wrong person.

The reply's writer sees each shown item as one line of the tool result ("2. Taco Place: 3
visits; ..."). A sentence that is about one item (it names its position, "the second
one", or its name) may carry only numbers from that item's line (or the person's message, or the
search line): a distance taken from another item's line fails. A superlative ("most visited";
a domain adds its own, places "closest") must be true of that item among the shown ones.
Speaking of the person as "them" or of their history as "my" ("my last stop", "I gave it 5
stars") fails anywhere. Lexical, so cheap enough for every streamed sentence; what it cannot
attach to one item it leaves to the list-wide checks in agent/chat/guard.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.chat.rules import ORDINALS
from domains.claims import NEUTRAL_SUPERLATIVES, Superlative

ITEM_LINE = re.compile(r"^(\d+)\.\s+(.+)$", re.MULTILINE)
ITEM_REF = re.compile(r"(?<![\w.])(\d)\.\s+[A-Z]")  # "2. Bagel Shop" in a reply: the second item
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.:,]\d+)?")
# a sentence ends at . ! ? after a non-digit ("0.2 km" and "2. Bagel Shop" do not end one)
SENTENCE_END = re.compile(r"(?<=[^\d\s][.!?])\s+|\n+")
ORDINAL_REF = re.compile(r"\b(first|second|third|fourth|fifth)\b(?:\s+(?:one|option|place|pick|choice|\w+))?")
WRONG_PERSON = (
    re.compile(r"\b(?:suits?|for|to|like|fits?) (?:them|him|her)\b", re.IGNORECASE),
    re.compile(r"\btheir (?:last|latest|usual|favou?rite|habits?|visits?|ratings?|history|taste)\b", re.I),
    re.compile(
        r"\b(?:my|our) (?:last|latest|usual|favou?rite|recent|own) (?:\w+ )?(?:stop|visit|place|spot|"
        r"check-?in|rating|film|movie|meal|routine|habit)s?\b",
        re.IGNORECASE,
    ),
    re.compile(r"\bI (?:gave|rated|visited|went|go|checked in|watched|liked|enjoyed|love)\b"),
)
# words of an item's name that say nothing about which item it is
GENERIC = frozenset(
    "the a an and of place restaurant shop store bar cafe café spot joint house center centre "
    "film movie it new you your this that".split()
)


@dataclass
class ShownLine:
    position: int
    text: str
    name_words: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)
    values: dict[str, float] = field(default_factory=dict)  # superlative name -> the item's value


def norm_number(n: str) -> str:
    return n.replace(",", "").rstrip(".").lstrip("0") or "0"


def shown_lines(tool_text: str, superlatives: Sequence[Superlative] = ()) -> list[ShownLine]:
    out = []
    for m in ITEM_LINE.finditer(tool_text):
        text = m.group(2)
        name = text.split(":", 1)[0]
        values = {}
        for sup in superlatives:
            v = sup.value.search(text)
            if v:
                values[sup.name] = float(v.group(1))
        out.append(
            ShownLine(
                int(m.group(1)),
                text,
                {w for w in re.findall(r"[a-z0-9']+", name.lower()) if len(w) >= 4 and w not in GENERIC},
                {norm_number(n) for n in NUMBER.findall(text)},
                values,
            )
        )
    return out


def _about(sentence: str, lines: list[ShownLine]) -> ShownLine | None:
    """The one shown item a sentence is about, or None (none, or several)."""
    low = sentence.lower()
    hits: set[int] = set()
    for m in ITEM_REF.finditer(sentence):
        hits.add(int(m.group(1)))
    for m in ORDINAL_REF.finditer(low):
        hits.add(ORDINALS[m.group(1)])
    words = set(re.findall(r"[a-z0-9']+", low))
    for line in lines:
        if line.name_words and line.name_words <= words:
            hits.add(line.position)
    by_pos = {line.position: line for line in lines}
    chosen = [by_pos[h] for h in hits if h in by_pos]
    return chosen[0] if len(chosen) == 1 else None


def item_claims(
    text: str,
    tool_text: str,
    message: str,
    partial: bool = False,
    superlatives: Sequence[Superlative] = NEUTRAL_SUPERLATIVES,
) -> list[str]:
    """Problems with what ``text`` says of single items and of the person (empty: fine);
    ``superlatives``: the domain's ("closest" for places)."""
    problems = [
        f"speaks of the person in the wrong person: {m.group(0)!r}"
        for p in WRONG_PERSON
        for m in p.finditer(text)
    ]
    lines = shown_lines(tool_text, superlatives)
    if not lines:
        return problems
    others = {norm_number(n) for n in NUMBER.findall(ITEM_LINE.sub("", tool_text) + "\n" + message)}
    sentences = [s for s in SENTENCE_END.split(text) if s.strip()]
    if partial and sentences and not re.search(r"[^\d\s][.!?]\s*$|\n\s*$", text):
        sentences = sentences[:-1]  # still being written
    for s in sentences:
        item = _about(s, lines)
        if item is None:
            continue
        positions = {m.group(1) for m in ITEM_REF.finditer(s)}
        for n in NUMBER.findall(s):
            v = norm_number(n)
            if v not in item.numbers and v not in others and v not in positions:
                problems.append(f"says {n} of {item.position}. but its result does not")
        for sup in superlatives:
            mine = item.values.get(sup.name)
            all_ = [x for line in lines if (x := line.values.get(sup.name)) is not None]
            if mine is None or len(all_) < 2 or not sup.words.search(s):
                continue
            if mine != (min(all_) if sup.best == "min" else max(all_)):
                problems.append(f"calls {item.position}. {sup.said}, but another shown one is")
    return problems
