"""How a catalog's items and events are called in sentences a person reads.

A domain names its own ("a place", "check-ins"; "a film", "ratings"); profile statements, labels,
explanations and chat replies are written with these words, so nothing above ``core`` hard-codes
what the items are.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Nouns:
    item: str = "item"
    items: str = "items"
    event: str = "event"
    events: str = "events"
    had: str = "had"  # "you have had it 3 times" / "you have been to it" / "you rated it"
    kind: str = "kind"  # "kind of place", "genre"
    kinds: str = "kinds"
    at: str = ""  # "mostly at Bar places" (places) / "mostly Comedy films"
    of: str = "on"  # "120 visits at 30 places", "231 ratings of 231 films", "40 events on 12 items"

    def a(self, word: str | None = None) -> str:
        """ "a place", "an item"."""
        w = word or self.item
        return ("an " if w[:1].lower() in "aeiou" else "a ") + w

    def count(self, n: int, *, event: bool = False) -> str:
        """ "1 film", "3 films", "1 rating"."""
        one, many = (self.event, self.events) if event else (self.item, self.items)
        return f"{n} {one if n == 1 else many}"


ITEMS = Nouns()
