"""The films domain's chat arguments: a decade ("something from the 80s", "a 1990s thriller") and a
film the wish is like ("something like Heat but lighter")."""

from __future__ import annotations

import re
from typing import Any

DECADE_WORDS = re.compile(
    r"\b(?:(?:19|20)?([0-9])0'?s|(?:the )?(?:nineteen|twenty)[- ]?(\w+)ies|from (?:19|20)([0-9])[0-9])\b",
    re.IGNORECASE,
)
SPELLED = {
    "twent": 20,
    "thirt": 30,
    "fort": 40,
    "fift": 50,
    "sixt": 60,
    "sevent": 70,
    "eight": 80,
    "ninet": 90,
}


def decade_in(message: str) -> int | None:
    """The decade a message names ("80s" -> 1980, "2000s" -> 2000, "the nineties" -> 1990)."""
    m = re.search(r"\b((?:19|20)[0-9]0)'?s\b", message)
    if m:
        return int(m.group(1))
    m = re.search(r"(?<![0-9])'?([0-9])0'?s\b", message)
    if m:
        d = int(m.group(1)) * 10
        return 2000 + d if d <= 20 else 1900 + d
    m = re.search(
        r"\b(twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties)\b", message, re.I
    )
    if m:
        word = m.group(1).lower()
        return 1900 + next(v for k, v in SPELLED.items() if word.startswith(k))
    return None


class Decade:
    name = "decade"
    default = "same"
    prompt = (
        'decade: the decade they name, as a year ending in 0 ("1980" for "the 80s"), only if they name one.'
    )

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "enum": ["same", *(str(y) for y in range(1910, 2030, 10))],
            "default": "same",
        }

    def cued(self, message: str) -> bool:
        return decade_in(message) is not None

    def from_rules(self, message: str) -> str:
        d = decade_in(message)
        return str(d) if d is not None else "same"

    def strip(self, text: str) -> str:
        return re.sub(r"\b(?:from )?(?:the )?(?:(?:19|20)?[0-9]0'?s|\w+ties)\b", " ", text, flags=re.I)

    def apply(self, args: dict[str, Any], value: Any) -> dict[str, Any]:
        out = dict(args)
        if value in (None, "same"):
            return out
        if value in ("any", ""):
            out.pop("decade", None)
            return out
        try:
            out["decade"] = int(str(value)[:4])
        except ValueError:
            pass
        return out


DECADE = Decade()


LIKE_WORDS = re.compile(
    r"\b(?:(?:(?:something|anything|films?|movies?|ones?|stuff|more)\s+(?:a\s+bit\s+)?like)|"
    r"(?:(?:something|anything|films?|movies?|ones?|stuff|more)\s+)?(?:similar\s+to|in\s+the\s+vein\s+of|"
    r"along\s+the\s+lines\s+of|(?:same|similar)\s+vibe\s+as|reminds?\s+me\s+of))\s+"
    r"(?P<title>.+?)\s*(?=\b(?:but|without|except|from|no|please|tonight|today|thanks)\b|[,.;!?]|$)",
    re.IGNORECASE,
)


def liked_in(message: str) -> str | None:
    """The film a message names as an example ("something like Heat but lighter" -> "Heat")."""
    m = LIKE_WORDS.search(message)
    if not m:
        return None
    title = m.group("title").strip(" \"'“”‘’")
    return title[:60] or None


class Like:
    name = "like"
    default = "same"
    prompt = (
        'like: the title of a film they name as an example of what they want ("something like Heat" -> '
        '"Heat"), only if they name one.'
    )

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": 60, "default": "same"}

    def cued(self, message: str) -> bool:
        return liked_in(message) is not None

    def from_rules(self, message: str) -> str:
        return liked_in(message) or "same"

    def strip(self, text: str) -> str:
        m = LIKE_WORDS.search(text)
        return text[: m.start()] + " " + text[m.end() :] if m else text

    def apply(self, args: dict[str, Any], value: Any) -> dict[str, Any]:
        out = dict(args)
        if value in (None, "same", ""):
            return out
        if value == "any":
            out.pop("like", None)
            return out
        out["like"] = str(value)[:60]
        return out


LIKE = Like()
