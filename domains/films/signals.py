"""What films are ranked by, read as of the query's time (retrieval/timeline.py): the order in
which people rate films, the people who rate like this person, popularity now, genres and years.

``FilmSignals`` is built once per catalog (the ratings in time order, their pair logs, each film's
year and genres). ``FilmView`` is one query: the person's rated films before the query time and,
computed on first use and shared by the sources and the features, whole-catalog vectors.

The signals and their settings come from a study on the dev split of shared/datasets/
movielens_small (docs/measurements.md#films): sequence co-occurrence (what people rate within 20
ratings after the person's recent films, recent years weighing more) carries most of the signal;
similar raters, popularity around the query time, genre taste and release years add to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from domains.films.titles import TitleIndex
from retrieval.timeline import DAY_S, PairSpec, Timeline

SEQ = PairSpec("seq", window=20, decay=1.0, half_life_days=1000)
SEQ_HALF_LIFE = 1000.0
RECENT = 30  # the person's latest films that sequence reads
NEIGHBOURS = 50
YEAR_S = 365.25 * DAY_S
POP_WINDOWS = (30, 365)
POP_HALF_LIFE = 90.0


@dataclass
class FilmSignals:
    timeline: Timeline
    year: np.ndarray  # release year per catalog index (NaN unknown)
    genres: sp.csr_matrix  # catalog x genres, 1 where the film is of the genre
    genre_names: list[str]
    user_index: dict[str, int]  # person id -> row in the timeline
    titles: TitleIndex  # finds a film by the words a person names it with
    _at_end: dict[tuple[str, float], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.year)

    def at(self, name: str, t: float, param: float = 0.0) -> np.ndarray:
        """A catalog vector as of t; a query after the last rating (serving) reads a copy made
        once, since nothing later can change it."""
        tl = self.timeline
        compute = {
            "count": lambda: tl.counts(t),
            "window": lambda: tl.window(t, param),
            "decayed": lambda: tl.decayed(t, param),
            "first": lambda: tl.first_time(t),
        }[name]
        if len(tl) and t > tl.ts[-1]:
            # decayed values still move with t: only the time-free ones are kept
            if name in ("count", "first"):
                key = (name, param)
                if key not in self._at_end:
                    self._at_end[key] = compute()
                return self._at_end[key]
        return compute()

    def warm(self) -> None:
        t = float(self.timeline.ts[-1]) + 1 if len(self.timeline) else 0.0
        self.at("count", t), self.at("first", t)


@dataclass
class FilmView:
    """One query over films: the person's ratings before ``t`` (seconds), oldest first."""

    signals: FilmSignals
    t: float
    items: np.ndarray
    ratings: np.ndarray
    times: np.ndarray
    person: int | None  # the person's row in the timeline (None: new to it)
    had: np.ndarray  # bool per catalog index: rated before t

    @property
    def n(self) -> int:
        return len(self.items)

    def seeded(self, film: int) -> FilmView:
        """The view with ``film`` as the person's latest (a wish "like <film>"): what people rate
        after it leads the sequence; the film itself is not shown."""
        had = self.had.copy()
        had[film] = True
        return FilmView(
            self.signals,
            self.t,
            np.r_[self.items, film],
            np.r_[self.ratings, np.nan],
            np.r_[self.times, self.t],
            self.person,
            had,
        )

    @cached_property
    def _recent(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The latest RECENT films (latest first) and the sequence log read after and before each."""
        a = self.items[-RECENT:][::-1]
        log = self.signals.timeline.pairs["seq"]
        n = self.signals.n
        fwd = np.zeros((len(a), n))
        back = np.zeros((len(a), n))
        for j, i in enumerate(a.tolist()):
            one = np.array([i])
            fwd[j] = log.after(one, np.ones(1), self.t)
            back[j] = log.before(one, np.ones(1), self.t)
        return a, fwd, back

    def sequence(
        self, last: int, pos_decay: float = 1.0, back: float = 0.5, fwd: float = 1.0, alpha: float = 0.5
    ) -> np.ndarray:
        """What people rate shortly after (and, weighted ``back``, just before) the person's
        ``last`` films, nearer films weighing more, each film's pull damped by its popularity."""
        if not self.n:
            return np.zeros(self.signals.n)
        a, f, b = self._recent
        k = min(last, len(a))
        w = 1.0 / np.arange(1, k + 1) ** pos_decay
        w = w / (self.seq_counts[a[:k]] + 1.0) ** alpha
        return w @ (fwd * f[:k] + back * b[:k])

    @cached_property
    def seq_counts(self) -> np.ndarray:
        return self.signals.at("decayed", self.t, SEQ_HALF_LIFE)

    @cached_property
    def neighbours(self) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
        """The people whose films before t overlap the person's most (cosine), and their rows."""
        ui = self.signals.timeline.user_items(self.t)
        me = np.zeros(self.signals.n, dtype=np.float32)
        me[self.items] = 1.0
        if not self.n or ui.shape[0] == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0), ui
        sizes = np.asarray(ui.sum(axis=1)).ravel()
        sims = (ui @ me) / np.sqrt(np.maximum(sizes, 1.0) * me.sum())
        if self.person is not None:
            sims[self.person] = 0.0
        k = min(NEIGHBOURS, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[sims[top] > 0]
        return top, sims[top].astype(float), ui

    @cached_property
    def similar_raters(self) -> np.ndarray:
        """Films the most similar people rated, weighted by similarity squared."""
        top, sims, ui = self.neighbours
        if not len(top):
            return np.zeros(self.signals.n)
        w = sims**2
        return np.asarray(ui[top].T @ w).ravel() / (w.sum() + 1e-12)

    @cached_property
    def popular_now(self) -> np.ndarray:
        return self.signals.at("decayed", self.t, POP_HALF_LIFE)

    def window(self, days: float) -> np.ndarray:
        return self.signals.at("window", self.t, days)

    @cached_property
    def count(self) -> np.ndarray:
        return self.signals.at("count", self.t)

    @cached_property
    def genre_profile(self) -> np.ndarray:
        """The person's taste over genres: films rated above their mean count more, below less."""
        g = self.signals.genres
        if not self.n:
            return np.zeros(g.shape[1])
        r = self.ratings
        ok = ~np.isnan(r)
        w = np.where(ok, r - (np.nanmean(r) if ok.any() else 0.0), 0.0) + 1.0
        p = np.asarray(g[self.items].T @ w).ravel()
        return p / (np.abs(p).sum() + 1e-9)

    @cached_property
    def genre_affinity(self) -> np.ndarray:
        g = self.signals.genres
        n_genres = np.maximum(np.asarray(g.sum(axis=1)).ravel(), 1.0)
        return np.asarray(g @ self.genre_profile).ravel() / n_genres

    @cached_property
    def genre_taste(self) -> np.ndarray:
        """Genre affinity times the log of last year's ratings: what to watch of what they like."""
        return (self.genre_affinity + 1e-3) * np.log1p(self.window(365))

    @cached_property
    def query_year(self) -> float:
        return 1970.0 + self.t / YEAR_S

    def rank_among_unrated(self, v: np.ndarray) -> np.ndarray:
        """1-based rank of every film by ``v`` among the films the person has not rated (ties
        share the best rank; rated films get the rank after the last)."""
        key = np.where(self.had, (v.min() if len(v) else 0.0) - 1.0, v)
        order = np.argsort(-key, kind="stable")
        ranks = np.empty(len(v))
        sv = key[order]
        first = np.r_[0, np.flatnonzero(np.diff(sv)) + 1]
        ranks[order] = np.repeat(first + 1, np.diff(np.r_[first, len(v)]))
        ranks[self.had] = len(v) - int(self.had.sum()) + 1
        return ranks
