"""Catalog statistics readable as of any moment: what a query at time t may know is the events
strictly before t, and nothing else.

``Timeline`` keeps the training history once, in time order, as catalog indices. A read at t
(``counts``, ``window``, ``decayed``, ``rating_sums``, ``user_items``) looks only at the prefix of
events before t, so one object serves a request now (t = the request time, every event) and an
offline evaluation or training pseudo-target in 1999 (only what was rated before it) without
rebuilding or replaying anything. ``PairLog`` does the same for item-to-item co-occurrence: every
pair (a person had a, then b within a window) is stored with the later event's time, and a read at
t sums the pairs stamped before t. Exact at any t; O(events) per read at most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

DAY_S = 86400.0


@dataclass(frozen=True)
class PairSpec:
    """How a co-occurrence log is built: b counts for a when the same person had b ``k`` events
    after a (1 <= k <= ``window``), at most ``max_gap_s`` later, with weight 1 / k**``decay``;
    ``half_life_days`` makes a pair weigh half as much every so many days before the read."""

    name: str
    window: int
    decay: float = 1.0
    max_gap_s: float = np.inf
    half_life_days: float | None = None
    symmetric: bool = False


class PairLog:
    """Pairs (a, b, weight, time) sorted by a then time (reads "after a") and by b then time
    (reads "before b")."""

    def __init__(self, spec: PairSpec, user: np.ndarray, item: np.ndarray, ts: np.ndarray, n: int) -> None:
        self.spec, self.n = spec, n
        a, b, w, t = _pairs(spec, user, item, ts)
        if spec.symmetric:
            a, b, w, t = np.r_[a, b], np.r_[b, a], np.r_[w, w], np.r_[t, t]
        self._fwd = _Sorted(a, b, w, t, n)
        self._back = _Sorted(b, a, w, t, n)

    def __len__(self) -> int:
        return len(self._fwd.other)

    def after(self, origins: np.ndarray, weights: np.ndarray, t: float) -> np.ndarray:
        """Over the catalog: sum over origins a of weight(a) * M_t[a, b], M_t the pairs before t."""
        return self._fwd.read(origins, weights, t, self.spec.half_life_days)

    def before(self, targets: np.ndarray, weights: np.ndarray, t: float) -> np.ndarray:
        """Over the catalog: sum over a of weight(a) * M_t[b, a] (what people had just before a)."""
        return self._back.read(targets, weights, t, self.spec.half_life_days)


class _Sorted:
    def __init__(self, key: np.ndarray, other: np.ndarray, w: np.ndarray, t: np.ndarray, n: int) -> None:
        order = np.lexsort((t, key))
        self.other = other[order].astype(np.int32)
        self.w = w[order].astype(np.float32)
        self.t = t[order].astype(np.float64)
        self.ptr = np.searchsorted(key[order], np.arange(n + 1))
        self.n = n

    def read(self, keys: np.ndarray, weights: np.ndarray, t: float, half_life: float | None) -> np.ndarray:
        out = np.zeros(self.n)
        for k, wk in zip(keys.tolist(), weights.tolist(), strict=True):
            lo, hi = self.ptr[k], self.ptr[k + 1]
            hi = lo + int(np.searchsorted(self.t[lo:hi], t, side="left"))
            if hi <= lo:
                continue
            w = self.w[lo:hi].astype(np.float64)
            if half_life:
                w = w * np.exp2(-(t - self.t[lo:hi]) / (half_life * DAY_S))
            out += np.bincount(self.other[lo:hi], weights=w * wk, minlength=self.n)
        return out


def _pairs(
    spec: PairSpec, user: np.ndarray, item: np.ndarray, ts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each person's sequence in time order (the arrays are already in time order)."""
    order = np.argsort(user, kind="stable")
    su, si, st = user[order], item[order], ts[order]
    parts: list[tuple[np.ndarray, ...]] = []
    for k in range(1, min(spec.window, len(su) - 1) + 1):
        ok = su[k:] == su[:-k]
        if np.isfinite(spec.max_gap_s):
            ok &= (st[k:] - st[:-k]) <= spec.max_gap_s
        idx = np.flatnonzero(ok)
        if not len(idx):
            break
        w = np.full(len(idx), 1.0 / k**spec.decay)
        parts.append((si[idx], si[idx + k], w, st[idx + k]))
    if not parts:
        e = np.zeros(0)
        return e.astype(np.int64), e.astype(np.int64), e, e
    a, b, w, t = (np.concatenate(x) for x in zip(*parts, strict=True))
    return a, b, w, t


class Timeline:
    """The history's events in time order, as (item, user, time, rating) arrays."""

    def __init__(
        self,
        item: np.ndarray,
        user: np.ndarray,
        ts: np.ndarray,
        rating: np.ndarray,
        n_items: int,
        n_users: int,
        pairs: tuple[PairSpec, ...] = (),
    ) -> None:
        order = np.argsort(ts, kind="stable")
        self.item = item[order].astype(np.int64)
        self.user = user[order].astype(np.int64)
        self.ts = ts[order].astype(np.float64)
        self.rating = rating[order].astype(np.float64)
        self.n_items, self.n_users = n_items, n_users
        self.pairs = {p.name: PairLog(p, self.user, self.item, self.ts, n_items) for p in pairs}

    def __len__(self) -> int:
        return len(self.item)

    def cut(self, t: float) -> int:
        """How many events came strictly before t."""
        return int(np.searchsorted(self.ts, t, side="left"))

    def counts(self, t: float) -> np.ndarray:
        return np.bincount(self.item[: self.cut(t)], minlength=self.n_items).astype(float)

    def window(self, t: float, days: float) -> np.ndarray:
        """Events per item in the ``days`` before t."""
        lo, hi = self.cut(t - days * DAY_S), self.cut(t)
        return np.bincount(self.item[lo:hi], minlength=self.n_items).astype(float)

    def decayed(self, t: float, half_life_days: float) -> np.ndarray:
        """Events per item before t, each weighing half as much every ``half_life_days`` (events
        older than 40 half-lives weigh < 1e-12 and are skipped)."""
        lo, hi = self.cut(t - 40 * half_life_days * DAY_S), self.cut(t)
        w = np.exp2(-(t - self.ts[lo:hi]) / (half_life_days * DAY_S))
        return np.bincount(self.item[lo:hi], weights=w, minlength=self.n_items)

    def rating_sums(self, t: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Per item: ratings before t and their sum; and the mean of all of them."""
        hi = self.cut(t)
        r = self.rating[:hi]
        ok = ~np.isnan(r)
        n = np.bincount(self.item[:hi][ok], minlength=self.n_items).astype(float)
        s = np.bincount(self.item[:hi][ok], weights=r[ok], minlength=self.n_items)
        return n, s, float(r[ok].mean()) if ok.any() else float("nan")

    def first_time(self, t: float) -> np.ndarray:
        """When each item was first had before t (inf: not yet)."""
        hi = self.cut(t)
        first = np.full(self.n_items, np.inf)
        np.minimum.at(first, self.item[:hi], self.ts[:hi])
        return first

    def user_items(self, t: float) -> sp.csr_matrix:
        """People x items before t, 1 where a person had the item."""
        hi = self.cut(t)
        m = sp.csr_matrix(
            (np.ones(hi, dtype=np.float32), (self.user[:hi], self.item[:hi])),
            shape=(self.n_users, self.n_items),
        )
        m.data[:] = 1.0  # repeats summed by the constructor count once
        return m
