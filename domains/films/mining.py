"""What the films domain mines beyond time: how a person rates, which genres and decades they rate
highly, and the aspects of films their tags speak of.

A rating's value counts: a film they gave half a star is a film they did not like, not a visit.
Tags are a person's words about films ("twist ending", "atmospheric", "In Netflix queue"), read
with a film vocabulary (mood, story, acting, visuals, music, themes), never a restaurant one; a
tag that only organises a list (a queue, "seen it") says nothing of taste and is left out.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from domains.films.formats import title_year
from mining.facts import Fact, insufficient
from mining.frame import UserEvents
from mining.plan import MiningContext
from mining.text import usable

MIN_RATINGS = 5
MIN_PER_GENRE = 3
HIGH, LOW = 4.0, 2.0  # stars: a film they liked, one they did not
# Aspects of films people's tags speak of (lower-case words or phrases in the tag)
ASPECTS = {
    "mood": {"funny", "comedy", "dark", "feel-good", "feel good", "sad", "depressing", "atmospheric",
             "quirky", "witty", "hilarious", "creepy", "scary", "tense", "suspense", "romantic", "cute"},
    "story": {"plot", "twist", "twist ending", "nonlinear", "story", "ending", "predictable", "complex",
              "mindfuck", "surreal", "thought-provoking", "philosophical", "based on a book", "true story"},
    "acting": {"acting", "great acting", "performance", "cast", "overacting", "ensemble cast"},
    "visuals": {"cinematography", "visually appealing", "beautiful", "visual", "animation", "cgi",
                "special effects", "stylized"},
    "music": {"soundtrack", "music", "score", "musical"},
    "themes": {"war", "politics", "religion", "social commentary", "history", "dystopia", "time travel",
               "space", "crime", "family", "friendship", "coming of age", "revenge", "love"},
}  # fmt: skip
# Tags that organise a list rather than describe a film
LIST_TAGS = re.compile(r"\b(queue|netflix|to watch|watchlist|seen|dvd|owned?|tivo|bd-r|library)\b", re.I)


def _stars(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def rating_facts(ev: UserEvents, ctx: MiningContext | None = None) -> list[Fact]:
    """How they rate: how many, the mean, how much of the scale they use; the genres they rate
    highest and lowest; the decades of the films they rate."""
    rated = ~np.isnan(ev.rating)
    n = int(rated.sum())
    if n < MIN_RATINGS:
        return [insufficient("taste.ratings", "taste", "how they rate", n, f"needs ≥ {MIN_RATINGS} ratings")]
    r = ev.rating[rated]
    mean, high, low = float(r.mean()), float((r >= HIGH).mean()), float((r <= LOW).mean())
    facts = [
        Fact(
            "taste.ratings",
            "taste",
            f"Rated {n} films, {_stars(mean)} stars on average: {high:.0%} got {_stars(HIGH)} or more, "
            f"{low:.0%} {_stars(LOW)} or less.",
            {"ratings": n, "mean": round(mean, 2), "high_share": round(high, 3), "low_share": round(low, 3)},
            n,
            min(1.0, n / 30),
        )
    ]
    facts += _genre_fact(ev, rated, mean)
    facts += _decade_fact(ev, rated)
    return facts


def _genre_fact(ev: UserEvents, rated: np.ndarray, mean: float) -> list[Fact]:
    by: dict[str, list[float]] = {}
    for kinds, v, ok in zip(ev.kinds, ev.rating, rated, strict=True):
        if ok:
            for k in kinds:
                by.setdefault(k, []).append(float(v))
    stats = {k: (float(np.mean(v)), len(v)) for k, v in by.items() if len(v) >= MIN_PER_GENRE}
    if len(stats) < 2:
        return []
    order = sorted(stats, key=lambda k: (-stats[k][0], -stats[k][1]))
    liked = [k for k in order if stats[k][0] >= mean + 0.25][:3]
    disliked = [k for k in reversed(order) if stats[k][0] <= mean - 0.25][:2]
    if not liked and not disliked:
        return []
    parts = []
    if liked:
        parts.append(
            "rates "
            + ", ".join(f"{k} ({_stars(stats[k][0])} over {stats[k][1]})" for k in liked)
            + " highest"
        )
    if disliked:
        parts.append(
            ", ".join(f"{k} ({_stars(stats[k][0])} over {stats[k][1]})" for k in disliked) + " lowest"
        )
    value = {
        "liked": [{"genre": k, "mean": round(stats[k][0], 2), "ratings": stats[k][1]} for k in liked],
        "disliked": [{"genre": k, "mean": round(stats[k][0], 2), "ratings": stats[k][1]} for k in disliked],
        "overall_mean": round(mean, 2),
    }
    support = sum(stats[k][1] for k in liked + disliked)
    statement = "; ".join(parts)
    return [
        Fact(
            "taste.genres",
            "taste",
            statement[0].upper() + statement[1:] + ".",
            value,
            support,
            min(1.0, support / 20),
        )
    ]


def _decade_fact(ev: UserEvents, rated: np.ndarray) -> list[Fact]:
    """The decades of the films they rate (from the year in each title)."""
    years = [title_year(str(t)) for t in _names(ev)]
    decades = [y // 10 * 10 for y, ok in zip(years, rated, strict=True) if y and ok]
    if len(decades) < MIN_RATINGS:
        return []
    counts = Counter(decades)
    top, k = counts.most_common(1)[0]
    share = k / len(decades)
    return [
        Fact(
            "taste.decades",
            "taste",
            f"Most of the films they rate are from the {top}s ({share:.0%}).",
            {
                "top_decade": top,
                "share": round(share, 3),
                "by_decade": {str(d): c for d, c in sorted(counts.items())},
            },
            len(decades),
            min(1.0, len(decades) / 30) * min(1.0, share * 2),
        )
    ]


RECENT = 5


def recent_facts(ev: UserEvents, ctx: MiningContext | None = None) -> list[Fact]:
    """The films they rated last, with their stars and genres (what "lately" means for films)."""
    rated = np.flatnonzero(~np.isnan(ev.rating))
    if not len(rated):
        return []
    names = _names(ev)
    last = rated[-RECENT:][::-1]
    films = [
        {"title": names[i] or str(ev.item[i]), "stars": float(ev.rating[i]), "genres": list(ev.kinds[i])}
        for i in last
    ]
    said = ", ".join(f"{f['title']} ({_stars(float(f['stars']))} stars)" for f in films[:3])  # type: ignore[arg-type]
    return [
        Fact(
            "taste.recent",
            "taste",
            f"Lately rated {said}.",
            {"films": films, "at": str(ev.ts[last[0]])},
            len(last),
            1.0,
        )
    ]


def _names(ev: UserEvents) -> list[str]:
    return [str(n) if isinstance(n, str) else "" for n in ev.names] if ev.names is not None else [""] * ev.n


def tag_facts(ev: UserEvents, ctx: MiningContext | None = None) -> list[Fact]:
    """The tags they use most and the aspects of films those tags speak of."""
    tags = [str(t).strip() for t in ev.text if isinstance(t, str) and t.strip()]
    taste = [t for t in tags if not LIST_TAGS.search(t)]
    if not taste:
        return []
    counts = Counter(t.lower() for t in taste)
    aspects: Counter[str] = Counter()
    for t, c in counts.items():
        for a, words in ASPECTS.items():
            if any(w == t or re.search(rf"\b{re.escape(w)}\b", t) for w in words):
                aspects[a] += c
    top = [t for t, _ in counts.most_common(3)]
    statement = f"Tags films with {', '.join(repr(t) for t in top)} ({len(taste)} tags)"
    if aspects:
        statement += "; they mostly speak of " + " and ".join(a for a, _ in aspects.most_common(2))
    value = {
        "top_tags": top,
        "aspects": dict(aspects.most_common()),
        "tags": len(taste),
        "list_tags": len(tags) - len(taste),
    }
    return [Fact("taste.tags", "taste", statement + ".", value, len(taste), min(1.0, len(taste) / 8))]


def _ratings_sentence(facts: dict[str, Fact]) -> tuple[str, list[str]] | None:
    f = usable(facts, "taste.ratings")
    if f is None:
        return None
    v = f.value
    return f"Rates films {_stars(v['mean'])} stars on average ({v['ratings']} rated).", [f.id]


def _genres_sentence(facts: dict[str, Fact]) -> tuple[str, list[str]] | None:
    f = usable(facts, "taste.genres")
    if f is None or not f.value.get("liked"):
        return None
    liked = [g["genre"] for g in f.value["liked"][:2]]
    return f"Rates {' and '.join(liked)} films highest.", [f.id]


def _tags_sentence(facts: dict[str, Fact]) -> tuple[str, list[str]] | None:
    f = usable(facts, "taste.tags")
    if f is None:
        return None
    return f"Tags films with {', '.join(repr(t) for t in f.value['top_tags'][:2])}.", [f.id]


def _recent_sentence(facts: dict[str, Fact]) -> tuple[str, list[str]] | None:
    f = usable(facts, "taste.recent")
    return (f.statement, [f.id]) if f is not None else None


FILM_SENTENCES = (_ratings_sentence, _genres_sentence, _recent_sentence, _tags_sentence)
