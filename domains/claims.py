"""Words that make a claim an explanation must back with a cited fact (agent/llm/faithfulness.py).

Each is (topic, pattern): the text may use the words only when a cited piece of evidence (or the
item itself) has that topic. The neutral claims are about time, trends, popularity and people; a
domain adds its own (places: near, home, work; films: what they rated).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Claim = tuple[str, re.Pattern[str]]


def _p(words: str) -> re.Pattern[str]:
    return re.compile(rf"\b({words})\b", re.I)


TREND: Claim = ("trend", _p(r"lately|recently|these days|more often|less often|increasingly|trend\w*|"
                            r"shift\w*|growing|more and more"))  # fmt: skip
NEW: Claim = ("new", _p(r"new to you|never been|haven'?t been|have not been|first time|something new|"
                        r"try something|haven'?t (?:seen|watched|rated)"))  # fmt: skip
POPULAR: Claim = ("popular", _p(r"popular|busy|crowd\w*|people often|many people|lots of people"))
SIMILAR: Claim = ("similar", _p(r"people like you|people who go|people who (?:like|rated|watch)\w*|"
                                r"similar (?:people|users|routines|tastes?)"))  # fmt: skip
ROUTE: Claim = ("route", _p(r"on your way|next stop|your route|route|straight from|after your"))
VISITS: Claim = ("visits", _p(r"you'?ve been here|you have been here|you visited|your visits|you went|"
                              r"you often go|you come here|your regular|your favou?rite|again"))  # fmt: skip

NEUTRAL_CLAIMS: tuple[Claim, ...] = (TREND, VISITS, NEW, POPULAR, SIMILAR, ROUTE)


# -- superlatives a chat reply may use of one shown item (agent/chat/claims.py) ----------------


@dataclass(frozen=True)
class Superlative:
    """A superlative a reply may use of one item only when its value is the best shown: ``value``
    finds the number in an item's line, ``words`` the superlative, ``best`` "min" or "max"."""

    name: str
    value: re.Pattern[str]
    words: re.Pattern[str]
    best: str
    said: str  # how a problem names it ("the closest")


MOST_VISITED = Superlative(
    "visits",
    re.compile(r"(\d+)\s+(?:visits|times)\b"),
    re.compile(r"\b(most visited|you visit most|visit(?:ed)? (?:it )?the most|most often)\b", re.I),
    "max",
    "the most visited",
)
NEUTRAL_SUPERLATIVES: tuple[Superlative, ...] = (MOST_VISITED,)
