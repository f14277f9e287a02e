"""What a user's reactions to earlier recommendations change in their next ones. Rules, not a model:

- a place they rejected is hidden from them for ``hide_rejected_days`` (unless they accepted or
  clicked it since);
- places of the category of places they rejected are lowered, places of the category of places
  they accepted or clicked (and those very places) are raised. The shift is a share of the spread
  of the pool's scores (so it means the same for the heuristic and the learned ranker), grows with
  the number of reactions, each decayed by its age (``half_life_days``), and saturates.

Only this user's reactions are read: one user's feedback never moves another's recommendations
(the ranker's learned statistics aside, when it is trained on stored feedback). Nothing here adds a
place to the pool: a raised place must already be a candidate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np

# How much one reaction counts: a click is interest, an accept a choice.
REACTION_WEIGHT = {"accepted": 1.0, "clicked": 0.5, "rejected": 1.0}
POSITIVE = ("accepted", "clicked")
SATURATION = 2.0  # reactions (decayed) for 63% of the full shift
# (raised per category, lowered per category, raised per place, the reactions behind each category)
Tallies = tuple[dict[str, float], dict[str, float], dict[str, float], dict[str, list["Reaction"]]]


@dataclass(frozen=True)
class FeedbackRules:
    hide_rejected_days: float = 30.0
    learning: bool = True
    rejected_penalty: float = 2.0
    accepted_boost: float = 0.75
    half_life_days: float = 30.0

    @classmethod
    def from_settings(cls, s: Any) -> FeedbackRules:
        return cls(s.hide_rejected_days, s.learning, s.rejected_penalty, s.accepted_boost, s.half_life_days)

    @property
    def memory(self) -> timedelta:
        """How far back reactions are read: the hiding window or four half-lives (1/16 weight)."""
        return timedelta(days=max(self.hide_rejected_days, 4 * self.half_life_days))


@dataclass(frozen=True)
class Reaction:
    item_id: str
    kind: str  # accepted | clicked | rejected
    at: datetime  # tz-aware
    category: str | None = None
    recommendation_id: str | None = None


@dataclass
class FeedbackSignals:
    """One user's recent reactions, read per request (a few rows by an indexed look-up)."""

    reactions: list[Reaction]
    now: datetime
    rules: FeedbackRules = field(default_factory=FeedbackRules)

    @classmethod
    def of(cls, reactions: Iterable[Reaction], now: datetime, rules: FeedbackRules) -> FeedbackSignals:
        return cls(sorted(reactions, key=lambda r: r.at), now, rules)

    def hidden(self) -> dict[str, Reaction]:
        """Places rejected within the hiding window (their latest reaction, later than any accept
        or click of the same place)."""
        if self.rules.hide_rejected_days <= 0:
            return {}
        since = self.now - timedelta(days=self.rules.hide_rejected_days)
        latest: dict[str, Reaction] = {}
        for r in self.reactions:  # oldest first: the latest reaction to each place wins
            latest[r.item_id] = r
        return {i: r for i, r in latest.items() if r.kind == "rejected" and r.at >= since}

    def _weight(self, r: Reaction) -> float:
        age_days = max((self.now - r.at).total_seconds() / 86400, 0.0)  # a later reaction counts fully
        return REACTION_WEIGHT.get(r.kind, 0.0) * 0.5 ** (age_days / self.rules.half_life_days)

    def _tallies(self) -> Tallies:
        pos_cat: dict[str, float] = {}
        neg_cat: dict[str, float] = {}
        pos_item: dict[str, float] = {}
        examples: dict[str, list[Reaction]] = {}
        since = self.now - self.rules.memory
        for r in self.reactions:
            if r.at < since:
                continue
            w = self._weight(r)
            cat = _norm(r.category)
            if r.kind in POSITIVE:
                pos_item[r.item_id] = pos_item.get(r.item_id, 0.0) + w
                if cat:
                    pos_cat[cat] = pos_cat.get(cat, 0.0) + w
            elif r.kind == "rejected" and cat:
                neg_cat[cat] = neg_cat.get(cat, 0.0) + w
            if cat:
                examples.setdefault(cat, []).append(r)
        return pos_cat, neg_cat, pos_item, examples

    def adjust(
        self, item_ids: Sequence[str], categories: Sequence[str | None], scores: np.ndarray
    ) -> tuple[np.ndarray, dict[int, float]]:
        """Scores shifted by the rules above, and each shifted position's shift in standard
        deviations of the pool's scores (``why`` says, for the places shown, what caused it)."""
        if not self.rules.learning or not self.reactions or len(scores) == 0:
            return scores, {}
        pos_cat, neg_cat, pos_item, _ = self._tally
        if not (pos_cat or neg_cat or pos_item):
            return scores, {}
        spread = float(np.std(scores)) if len(scores) > 1 else 0.0
        spread = spread if spread > 1e-9 else 1.0
        boost, penalty = self.rules.accepted_boost, self.rules.rejected_penalty
        shift = np.zeros(len(scores))
        for pos, (item, cat) in enumerate(zip(item_ids, categories, strict=True)):
            c = _norm(cat)
            up = _saturate(pos_item.get(item, 0.0)) + (_saturate(pos_cat.get(c, 0.0)) if c else 0.0)
            down = _saturate(neg_cat.get(c, 0.0)) if c else 0.0
            shift[pos] = boost * up - penalty * down
        moved = np.flatnonzero(np.abs(shift) > 1e-12)
        return scores + spread * shift, {int(p): round(float(shift[p]), 3) for p in moved}

    def why(self, item_id: str, category: str | None, shift: float) -> str:
        """ "lowered: Bar: place p1 rejected on 2026-11-20; …" (the latest reactions behind it)."""
        c = _norm(category)
        reason = self._reason(item_id, category, self._tally[3].get(c, []) if c else [])
        return f"{'raised' if shift > 0 else 'lowered'}: {reason}"

    @cached_property
    def _tally(self) -> Tallies:
        return self._tallies()

    def _reason(self, item: str, category: str | None, seen: list[Reaction]) -> str:
        """ "lowered: Bar, like place p1 rejected on 2026-11-20" (the latest reactions, at most three)."""
        parts = []
        for r in sorted(seen, key=lambda r: r.at, reverse=True)[:3]:
            parts.append(f"place {r.item_id} {r.kind} on {r.at.date().isoformat()}")
        mine = [r for r in self.reactions if r.item_id == item and r.kind in POSITIVE]
        if mine and not any(r.item_id == item for r in seen[:3]):
            parts.insert(0, f"this place {mine[-1].kind} on {mine[-1].at.date().isoformat()}")
        kind = f"{category}: " if category else ""
        return kind + "; ".join(parts)

    def summary(self) -> dict[str, Any]:
        """What was read, for the trace."""
        counts: dict[str, int] = {}
        for r in self.reactions:
            counts[r.kind] = counts.get(r.kind, 0) + 1
        return {"reactions": counts, "since_days": self.rules.memory.days, "learning": self.rules.learning}


def _norm(category: str | None) -> str:
    return category.strip().lower() if isinstance(category, str) else ""


def _saturate(w: float) -> float:
    """0 for no reactions, 0.39 for one, 0.78 for three, 0.92 for five: one reaction may be about
    that place alone, repeated ones are about the kind; with a ceiling."""
    return 1.0 - math.exp(-w / SATURATION) if w > 0 else 0.0
