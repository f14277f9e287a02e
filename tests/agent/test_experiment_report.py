"""The experiments report's statistics: interval coverage under clustered users, and power."""

from __future__ import annotations

import numpy as np

from agent.experiment_report import _arm_stats, _difference


def _simulated_arm(rng: np.random.Generator, users: int, rate: float, start: int) -> tuple[list, dict]:
    rows, reactions = [], {}
    for u in range(users):
        p_user = min(max(rng.normal(rate, 0.1), 0), 1)  # people differ: recs of one user correlate
        for j in range(int(rng.integers(1, 8))):
            rid = f"r{start + u}-{j}"
            rows.append((rid, f"u{start + u}"))
            if rng.random() < p_user:
                reactions[rid] = {"accepted"}
    return rows, reactions


def test_report_intervals_cover_the_truth_and_find_a_planted_difference() -> None:
    """Coverage of the 95% interval of the difference when the arms are the same (clustered users,
    uneven numbers of recommendations), and power against a planted 0.15 difference."""
    rng = np.random.default_rng(3)
    covered = found = 0
    runs = 200
    for _ in range(runs):
        a_rows, a_re = _simulated_arm(rng, 60, 0.3, 0)
        b_rows, b_re = _simulated_arm(rng, 60, 0.3, 1000)
        c_rows, c_re = _simulated_arm(rng, 60, 0.45, 2000)
        re = {**a_re, **b_re, **c_re}
        a, b, c = (_arm_stats(r, re)["_clusters"]["accept"] for r in (a_rows, b_rows, c_rows))
        lo, hi = _difference(a, b)["ci95"]
        covered += lo <= 0 <= hi
        found += _difference(a, c)["ci95"][0] > 0
    assert covered / runs >= 0.9  # nominal 0.95; well below would mean the intervals are too narrow
    assert found / runs >= 0.6
