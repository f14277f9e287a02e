"""What kinds each catalog item is of (a place's category, a film's genres), as masks over the catalog.

An item may have several kinds ("Adventure|Animation|Comedy"); its first is its primary kind, the
one shown as ``category``. Filters ask "is any of this item's kinds among these" (exact, case-
insensitive: the chat's grounded kinds) or "does any of its kinds contain one of these words"
(the API's ``include_categories``, as callers type them). A catalog without kinds has none: every
kind filter then keeps nothing, and callers say so instead of pretending to apply it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

NO_KINDS = "(no genres listed)"  # MovieLens' way of saying "none"


def split_kinds(value: object) -> tuple[str, ...]:
    """A kinds value as stored or ingested: a list, or one string with '|' between kinds."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    if isinstance(value, str):
        parts = value.split("|")
    elif isinstance(value, Iterable):
        parts = [str(v) for v in value]
    else:
        return ()
    return tuple(p.strip() for p in parts if p and p.strip() and p.strip() != NO_KINDS)


@dataclass
class ItemKinds:
    """Per catalog index: the item's kinds; built once per catalog, read by every request."""

    per_item: list[tuple[str, ...]]
    names: list[str] = field(init=False)
    matrix: sp.csr_matrix = field(init=False, repr=False)  # items x kinds, 1 where the item is of it
    _lower: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.names = sorted({k for ks in self.per_item for k in ks})
        pos = {k: j for j, k in enumerate(self.names)}
        rows = [i for i, ks in enumerate(self.per_item) for _ in ks]
        cols = [pos[k] for ks in self.per_item for k in ks]
        self.matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(self.per_item), len(self.names))
        )
        self._lower = {}
        for k, j in pos.items():
            self._lower.setdefault(k.lower(), j)

    @classmethod
    def of(cls, values: Sequence[object]) -> ItemKinds:
        return cls([split_kinds(v) for v in values])

    def __len__(self) -> int:
        return len(self.per_item)

    @property
    def any(self) -> bool:
        return bool(self.names)

    def primary(self, i: int) -> str | None:
        ks = self.per_item[i]
        return ks[0] if ks else None

    def columns(self, kinds: Iterable[str]) -> list[int]:
        return sorted({j for k in kinds if (j := self._lower.get(k.lower())) is not None})

    def mask_any(self, kinds: Iterable[str]) -> np.ndarray:
        """Items of at least one of ``kinds`` (exact names, any case)."""
        cols = self.columns(kinds)
        if not cols:
            return np.zeros(len(self.per_item), dtype=bool)
        return np.asarray(self.matrix[:, cols].sum(axis=1)).ravel() > 0

    def mask_words(self, words: Iterable[str]) -> np.ndarray:
        """Items with a kind that contains one of ``words`` (substring, any case)."""
        wanted = [w.lower() for w in words if w]
        cols = [j for j, k in enumerate(self.names) if any(w in k.lower() for w in wanted)]
        if not cols:
            return np.zeros(len(self.per_item), dtype=bool)
        return np.asarray(self.matrix[:, cols].sum(axis=1)).ravel() > 0

    def extended(self, more: Sequence[object]) -> ItemKinds:
        return ItemKinds([*self.per_item, *(split_kinds(v) for v in more)])
