"""Small words about an item and a person, shared by every domain: how often they had it."""

from __future__ import annotations

import math
from typing import Any


def visits_phrase(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def visit_count(c: Any) -> int:
    """How many times the person had the item before (from its ``user_count_log`` feature)."""
    v = getattr(c, "features", {}).get("user_count_log")
    return round(math.expm1(v)) if v else 0


def a(kind: str) -> str:
    """ "a Bar", "an Art Museum"; a phrase that is not a kind stays as it is."""
    if kind.startswith(("another", "your", "a ", "an ", "the ")):
        return kind
    return ("an " if kind[:1].lower() in "aeiou" else "a ") + kind
