"""Review text: a small local lexicon method for sentiment and aspects (no model download).

The polarity words are general; the aspects (what a review talks about) are the domain's: a
restaurant's service and wait are not a film's plot and acting (``sentiment_miner(aspects)``).
The LLM stage may enrich this later; the lexicon keeps mining pure, fast and offline."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mining.facts import Fact
from mining.frame import UserEvents

POSITIVE = set(
    "good great excellent amazing awesome love loved lovely nice friendly delicious tasty best perfect "
    "fantastic wonderful cozy cosy clean fresh fast quick helpful recommend favorite favourite enjoy enjoyed "
    "beautiful fun pleasant cheap affordable quiet".split()
)
NEGATIVE = set(
    "bad terrible awful horrible worst hate hated rude dirty slow cold bland overpriced expensive noisy loud "
    "crowded disappointing disappointed poor mediocre stale never wait waited broken closed smelly".split()
)
NEGATORS = {"not", "no", "never", "hardly", "isn't", "wasn't", "don't", "didn't"}
TOKEN = re.compile(r"[a-z']+")


def score_text(text: str, aspect_words: Mapping[str, set[str]] | None = None) -> tuple[float, set[str]]:
    """Sentiment in [-1, 1] and the aspects mentioned."""
    toks = TOKEN.findall(text.lower())
    s, hits = 0, 0
    for i, t in enumerate(toks):
        pol = 1 if t in POSITIVE else -1 if t in NEGATIVE else 0
        if pol:
            if any(p in NEGATORS for p in toks[max(0, i - 2) : i]):
                pol = -pol
            s += pol
            hits += 1
    aspects = {a for a, words in (aspect_words or {}).items() if words.intersection(toks)}
    return (s / hits if hits else 0.0), aspects


def sentiment_miner(aspect_words: Mapping[str, set[str]]) -> Callable[[UserEvents, Any], list[Fact]]:
    """The review miner with a domain's aspects."""

    def mine(ev: UserEvents, ctx: Any = None) -> list[Fact]:
        return sentiment_facts(ev, ctx, aspect_words)

    return mine


def sentiment_facts(
    ev: UserEvents, ctx: Any = None, aspect_words: Mapping[str, set[str]] | None = None
) -> list[Fact]:
    item = getattr(getattr(ctx, "nouns", None), "item", "item")
    idx = [i for i, t in enumerate(ev.text) if isinstance(t, str) and t.strip()]
    if not idx:
        return []  # no review text at all: nothing to say, and no fact claims otherwise
    scores, by_cat, aspect_scores = [], defaultdict(list), defaultdict(list)
    for i in idx:
        s, aspects = score_text(ev.text[i], aspect_words)
        if not np.isnan(ev.rating[i]):
            s = 0.5 * s + 0.5 * ((ev.rating[i] - 2.5) / 2.5 if ev.rating[i] <= 5 else (ev.rating[i] - 5) / 5)
        scores.append(s)
        key = ev.category[i] or (f"{item} {ev.item[i]}" if ev.item[i] else "other")
        by_cat[key].append(s)
        for a in aspects:
            aspect_scores[a].append(s)
    mean = float(np.mean(scores))
    mood = "positive" if mean > 0.15 else "negative" if mean < -0.15 else "mixed"
    liked = sorted((k for k, v in by_cat.items() if np.mean(v) > 0.2), key=lambda k: -np.mean(by_cat[k]))[:3]
    disliked = sorted((k for k, v in by_cat.items() if np.mean(v) < -0.2), key=lambda k: np.mean(by_cat[k]))[
        :3
    ]
    asp = Counter({a: len(v) for a, v in aspect_scores.items()})
    parts = [f"Reviews are {mood} overall ({len(idx)} with text)"]
    if liked:
        parts.append("liked: " + ", ".join(liked))
    if disliked:
        parts.append("disliked: " + ", ".join(disliked))
    if asp:
        parts.append("cares about " + ", ".join(a for a, _ in asp.most_common(2)))
    value = {
        "mean": round(mean, 3),
        "by_category": {k: round(float(np.mean(v)), 3) for k, v in by_cat.items()},
        "aspects": {
            a: {"mentions": len(v), "mean": round(float(np.mean(v)), 3)} for a, v in aspect_scores.items()
        },
    }
    return [
        Fact(
            "sentiment.reviews", "sentiment", "; ".join(parts) + ".", value, len(idx), min(1.0, len(idx) / 10)
        )
    ]
