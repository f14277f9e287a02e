"""Finding a film by the words a person uses for it ("something like heat", "like The Matrix"):
titles compared without their year, case, punctuation or a trailing article ("Matrix, The")."""

from __future__ import annotations

import difflib
import re
from functools import cached_property

import numpy as np

YEAR = re.compile(r"\(\d{4}[^)]*\)\s*$")
TRAILING_ARTICLE = re.compile(r"^(.*), (the|a|an|le|la|les|il|el|die|der|das)$", re.IGNORECASE)


def normal(title: str) -> str:
    t = YEAR.sub("", title or "").strip()
    t = re.sub(r"\s*\(.*?\)\s*", " ", t).strip()  # "(Fabuleux destin d'Amélie Poulain, Le)"
    m = TRAILING_ARTICLE.match(t)
    if m:
        t = f"{m.group(2)} {m.group(1)}"
    t = re.sub(r"^(the|a|an) ", "", t.lower())
    return " ".join(re.findall(r"[^\W_]+", t))


class TitleIndex:
    def __init__(self, titles: list[str | None]) -> None:
        self.titles = titles

    @cached_property
    def _normal(self) -> list[str]:
        return [normal(t or "") for t in self.titles]

    def find(self, words: str, popularity: np.ndarray) -> int | None:
        """The catalog index of the film ``words`` name (the most rated of equal matches), or None."""
        q = normal(words)
        if len(q) < 2:
            return None
        names = self._normal
        exact = [i for i, n in enumerate(names) if n == q]
        if not exact:
            exact = [i for i, n in enumerate(names) if n.startswith(q + " ") or f" {q} " in f" {n} "]
            exact = exact if len(q) >= 4 else []
        if not exact:
            close = set(difflib.get_close_matches(q, names, n=5, cutoff=0.85))
            exact = [i for i, n in enumerate(names) if n in close]
        if not exact:
            return None
        return max(exact, key=lambda i: (popularity[i] if i < len(popularity) else 0.0, -i))
