"""Statistics read as of a moment equal the same statistics computed from scratch on the events
before it (a brute-force reference), and nothing at or after the moment counts."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.timeline import DAY_S, PairSpec, Timeline


def _events(seed: int = 0, n: int = 400, users: int = 12, items: int = 30):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.uniform(0, 400 * DAY_S, n))
    user = rng.integers(0, users, n)
    item = rng.integers(0, items, n)
    rating = rng.choice([1.0, 2.5, 4.0, 5.0, np.nan], n)
    return item, user, ts, rating, items, users


def _pairs_reference(item, user, ts, spec: PairSpec, t: float, n: int) -> np.ndarray:
    """M_t[a, b] by brute force: for each person, each ordered pair within the window, before t."""
    m = np.zeros((n, n))
    for u in np.unique(user):
        idx = np.flatnonzero(user == u)
        idx = idx[np.argsort(ts[idx], kind="stable")]
        for i in range(len(idx)):
            for k in range(1, spec.window + 1):
                if i + k >= len(idx):
                    break
                a, b = idx[i], idx[i + k]
                if ts[b] >= t or ts[b] - ts[a] > spec.max_gap_s:
                    continue
                w = 1.0 / k**spec.decay
                if spec.half_life_days:
                    w *= 2 ** (-(t - ts[b]) / (spec.half_life_days * DAY_S))
                m[item[a], item[b]] += w
    return m


@pytest.mark.parametrize("t_day", [0.0, 57.3, 200.0, 399.9, 500.0])
def test_counts_windows_and_decay_match_a_recount(t_day: float) -> None:
    item, user, ts, rating, n_items, n_users = _events()
    tl = Timeline(item, user, ts, rating, n_items, n_users)
    t = t_day * DAY_S
    before = ts < t
    assert np.array_equal(tl.counts(t), np.bincount(item[before], minlength=n_items))
    win = before & (ts >= t - 30 * DAY_S)
    assert np.array_equal(tl.window(t, 30), np.bincount(item[win], minlength=n_items))
    w = np.where(before, 2 ** (-(t - ts) / (90 * DAY_S)), 0.0)
    assert np.allclose(tl.decayed(t, 90), np.bincount(item, weights=w, minlength=n_items))
    n, s, mean = tl.rating_sums(t)
    ok = before & ~np.isnan(rating)
    assert np.array_equal(n, np.bincount(item[ok], minlength=n_items))
    assert np.allclose(s, np.bincount(item[ok], weights=np.nan_to_num(rating)[ok], minlength=n_items))
    ui = tl.user_items(t).toarray()
    ref = np.zeros((n_users, n_items))
    ref[user[before], item[before]] = 1.0
    assert np.array_equal(ui, ref)


@pytest.mark.parametrize(
    "spec",
    [
        PairSpec("seq", window=5, decay=1.0, half_life_days=100),
        PairSpec("next", window=1, decay=0.0),
        PairSpec("sitting", window=50, decay=0.0, max_gap_s=3 * DAY_S),
    ],
)
def test_pair_reads_match_the_brute_force_matrix(spec: PairSpec) -> None:
    item, user, ts, rating, n_items, n_users = _events(seed=3)
    tl = Timeline(item, user, ts, rating, n_items, n_users, pairs=(spec,))
    log = tl.pairs[spec.name]
    for t in (10 * DAY_S, 150 * DAY_S, 390 * DAY_S):
        ref = _pairs_reference(item, user, ts, spec, t, n_items)
        origins, weights = np.array([3, 7, 3]), np.array([1.0, 0.5, 2.0])
        assert np.allclose(log.after(origins, weights, t), weights @ ref[origins])
        assert np.allclose(log.before(origins, weights, t), weights @ ref[:, origins].T)


def test_nothing_at_or_after_the_moment_counts() -> None:
    item = np.array([0, 1, 2, 1])
    user = np.array([0, 0, 0, 1])
    ts = np.array([10.0, 20.0, 30.0, 30.0])
    tl = Timeline(item, user, ts, np.full(4, 4.0), 3, 2, pairs=(PairSpec("seq", window=3),))
    assert tl.counts(30.0).tolist() == [1, 1, 0]  # the two events at t=30 are not before it
    assert tl.pairs["seq"].after(np.array([0]), np.ones(1), 30.0).tolist() == [0, 1, 0]
    assert tl.pairs["seq"].after(np.array([0]), np.ones(1), 30.5).tolist() == [0, 1, 0.5]
