"""Checks on an LLM-written chat reply, applied while it streams.

A reply may name only the places the tool returned and say only what the tool result (and the
user's own message) says. What is checked, lexically and therefore cheaply enough to run on every
streamed token:
- every catalog category named is one of a shown item's (or named in the tool result), and no
  excluded category is named at all;
- every number is one the tool result or the message contains, or a shown item's position;
- every capitalised name inside a sentence is a word of the tool result, the message or the
  catalog's vocabulary (an invented "Joe's Pizza" fails);
- what a sentence says of one shown item (a number, "closest", "most visited") is true of that
  item, and the person is "you" (agent/chat/claims.py);
- the reply is not empty and not a wall of text.

``GuardedStream`` releases streamed text only once the check has seen it whole, so a violation is
caught before the offending words reach the user: it holds back the unfinished last word and any
last words that could still grow into something the check rejects (the start of a category name,
"Thai" before "Restaurant"; the start of a phrase of the instructions); see ``feed``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agent.chat.claims import NUMBER, item_claims, norm_number
from domains.claims import NEUTRAL_SUPERLATIVES, Superlative

POSITION = re.compile(r"(?<![\w.:])(\d+)\.\s+[A-Z]")  # "2. Museum": a reference to the second result
CAPITALISED = re.compile(r"\b[A-Z][\w'’&-]*")
SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*|[\"“(]\s*|\d\.\s+|[-*•]\s+)$")
ALWAYS_OK = frozenset(
    """I I'm I'd I'll I've OK Okay Chronotope Monday Tuesday Wednesday Thursday Friday Saturday
    Sunday January February March April May June July August September October November December
    AM PM""".split()
)
MAX_CHARS = 900
ECHO_WORDS = 6  # this many words in a row from the instructions: the model is echoing its prompt


@dataclass
class ReplyRules:
    """What a reply may say, built from the tool result the model was given."""

    tool_text: str  # everything the model was shown about the results
    message: str  # the user's message (their own words may be echoed)
    n_items: int
    shown_categories: set[str] = field(default_factory=set)
    excluded_categories: set[str] = field(default_factory=set)
    catalog_categories: Iterable[str] = ()
    instructions: str = ""  # the prompt's own wording, which a reply must not repeat
    superlatives: Sequence[Superlative] = NEUTRAL_SUPERLATIVES  # the domain's, checked per item

    def __post_init__(self) -> None:
        source = f"{self.tool_text}\n{self.message}"
        lowered = source.lower()
        self.allowed_numbers = {norm_number(n) for n in NUMBER.findall(source)} | {
            str(i) for i in range(1, self.n_items + 1)
        }
        self.allowed_words = {w.lower() for w in re.findall(r"[\w'’&-]+", source)}
        cats = sorted({c for c in self.catalog_categories if len(c) >= 3}, key=len, reverse=True)
        for c in cats:
            self.allowed_words.update(w.lower() for w in re.findall(r"[\w'’&-]+", c))
        self._cat_patterns = [
            (c, re.compile(r"(?<![\w])" + re.escape(c.lower()) + r"(?![\w])")) for c in cats
        ]
        self._allowed_cats = {c.lower() for c in self.shown_categories} | {
            c.lower() for c, pat in self._cat_patterns if pat.search(lowered)
        }
        # A broader name for a shown kind is fine: "restaurant" for a shown German Restaurant.
        shown_words = [set(_plain_words(c)) for c in self.shown_categories]
        self._allowed_cats |= {
            c.lower() for c in cats if any(set(_plain_words(c)) <= ws for ws in shown_words)
        }
        self._banned = {c.lower() for c in self.excluded_categories}
        iw = _plain_words(self.instructions)
        self._echo = {tuple(iw[i : i + ECHO_WORDS]) for i in range(len(iw) - ECHO_WORDS + 1)}
        # Word sequences that may still become a category name or an echoed phrase with more words.
        self._open = {g[:n] for g in self._echo for n in range(1, ECHO_WORDS)}
        for c in cats:
            cw = tuple(_plain_words(c))
            self._open.update(cw[:n] for n in range(1, len(cw)))
        self._open_len = max((len(g) for g in self._open), default=0)

    def held_from(self, text: str, end: int) -> int:
        """Where the words before ``end`` that could still grow into a rejected mention start
        (``end`` when none could): those are held back until the next words settle them."""
        spans = [(m.start(), m.group(0)) for m in re.finditer(r"\S+", text[:end])][-self._open_len :]
        start = end
        for k in range(1, len(spans) + 1):
            tail = spans[-k:]
            if any(re.search(r"[^\w'’&-]$", w) for _, w in tail[:-1]):
                break  # punctuation inside: the mention ended there
            if tuple(p for _, w in tail for p in _plain_words(w)) in self._open:
                start = tail[0][0]
        return start


def _plain_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def check_reply(text: str, rules: ReplyRules, *, partial: bool = False) -> list[str]:
    """Problems with ``text`` (empty list: fine). ``partial``: the text is still streaming, so its
    last, possibly unfinished word is not judged yet and completeness is not required."""
    problems: list[str] = []
    body = text
    if partial:
        cut = max(body.rfind(" "), body.rfind("\n"))
        body = body[:cut] if cut >= 0 else ""
    elif not text.strip():
        return ["empty reply"]
    if len(text) > MAX_CHARS:
        problems.append(f"too long ({len(text)} characters)")
    lowered = body.lower()
    for cat, pat in rules._cat_patterns:
        if pat.search(lowered):
            key = cat.lower()
            if key in rules._banned:
                problems.append(f"names an excluded kind of place: {cat}")
            elif key not in rules._allowed_cats:
                problems.append(f"names a kind of place not among the results: {cat}")
            lowered = pat.sub(" ", lowered)  # "Coffee Shop" must not also count as "Coffee"
    for m in POSITION.finditer(body):
        if not 1 <= int(m.group(1)) <= rules.n_items:
            problems.append(f"refers to result {m.group(1)}, but there are {rules.n_items}")
    for n in NUMBER.findall(body):
        if norm_number(n) not in rules.allowed_numbers:
            problems.append(f"a number not in the results: {n}")
    if rules._echo:
        bw = _plain_words(body)
        if any(tuple(bw[i : i + ECHO_WORDS]) in rules._echo for i in range(len(bw) - ECHO_WORDS + 1)):
            problems.append("repeats its instructions")
    for m in CAPITALISED.finditer(body):
        word = m.group(0).rstrip("'’-")
        if word in ALWAYS_OK or word.lower() in rules.allowed_words:
            continue
        if SENTENCE_START.search(body[: m.start()]):
            continue  # a capital that only starts a sentence or a list entry
        problems.append(f"names something not among the results: {word}")
    return problems + item_claims(body, rules.tool_text, rules.message, partial, rules.superlatives)


class Violation(Exception):
    def __init__(self, problems: list[str], released: str, text: str = "") -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.released = released  # what the user has already seen
        self.text = text  # everything the model wrote so far


class GuardedStream:
    """Feed streamed pieces; get back the text that is safe to show now.

    Text is released up to the last whole word that nothing later can turn into a violation
    (``ReplyRules.held_from``), at least ``hold`` characters behind the newest piece, and only after
    ``check_reply`` found nothing wrong with everything so far. A violation raises ``Violation``
    carrying what was already released (possibly nothing). Holding only what could still change
    lets the first words reach the user a token or two after the model writes them, instead of a
    fixed window (48 characters, ~2 s at the CPU's decoding speed) later."""

    def __init__(self, rules: ReplyRules, hold: int = 0) -> None:
        self.rules = rules
        self.hold = hold
        self.text = ""
        self.released = 0

    def feed(self, piece: str) -> str:
        self.text += piece
        problems = check_reply(self.text, self.rules, partial=True)
        if problems:
            raise Violation(problems, self.text[: self.released], self.text)
        limit = len(self.text) - self.hold
        if limit <= self.released:
            return ""
        cut = max(self.text.rfind(" ", self.released, limit), self.text.rfind("\n", self.released, limit))
        if cut <= self.released:
            return ""
        cut = self.rules.held_from(self.text, cut)
        if cut <= self.released:
            return ""
        out, self.released = self.text[self.released : cut], cut
        return out

    def finish(self) -> str:
        problems = check_reply(self.text, self.rules)
        if problems:
            raise Violation(problems, self.text[: self.released], self.text)
        out, self.released = self.text[self.released :], len(self.text)
        return out
