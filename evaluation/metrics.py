"""Ranking metrics for one relevant item per query (the next check-in)."""

from __future__ import annotations

import numpy as np

KS = (1, 5, 10)


def summarize(ranks: np.ndarray, hit: str = "acc", ks: tuple[int, ...] = KS) -> dict[str, float]:
    """``ranks``: 1-based rank of the truth per query; ``inf`` for a miss (counts as 0). ``hit``
    names the hit rate: "acc" (Acc@k, the places protocol) or "hr" (HR@k, the films one)."""
    r = np.asarray(ranks, dtype=float)
    n = len(r)
    out: dict[str, float] = {"n": n}
    if n == 0:
        return out | {f"{hit}@{k}": 0.0 for k in ks} | {"ndcg@10": 0.0, "mrr": 0.0}
    for k in ks:
        acc = float(np.mean(r <= k))
        out[f"{hit}@{k}"] = acc
        p = acc / k  # one relevant item: precision@k = hit/k, recall@k = hit
        out[f"precision@{k}"] = p
        out[f"recall@{k}"] = acc
        out[f"f1@{k}"] = 2 * p * acc / (p + acc) if p + acc > 0 else 0.0
    out["ndcg@10"] = float(np.mean(np.where(r <= 10, 1 / np.log2(r + 1), 0.0)))
    out["mrr"] = float(np.mean(np.where(np.isfinite(r), 1 / r, 0.0)))
    return out


def rank_of(scores: np.ndarray, target: int, allowed: np.ndarray) -> float:
    """1-based rank of ``target`` among allowed items by descending score (ties: pessimistic
    half, so a constant scorer gets no credit); ``inf`` if it is not allowed."""
    if target < 0 or not allowed[target]:
        return float("inf")
    s = np.where(allowed, scores, -np.inf)
    t = s[target]
    higher = int(np.sum(s > t))
    ties = int(np.sum(s == t)) - 1
    return float(1 + higher + ties / 2)


def reciprocal(ranks: np.ndarray) -> np.ndarray:
    r = np.asarray(ranks, dtype=float)
    return np.where(np.isfinite(r), 1 / r, 0.0)


def paired_bootstrap(
    ranks_a: np.ndarray, ranks_b: np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> dict[str, float]:
    """MRR of A minus MRR of B on the same targets, with a 95% percentile interval from resampling
    the targets (paired: one resample draws both methods' ranks of each target) and the share of
    resamples where A is not better (a one-sided bootstrap p-value)."""
    a, b = reciprocal(ranks_a), reciprocal(ranks_b)
    n = len(a)
    if n == 0:
        return {"n": 0, "diff": 0.0, "lo": 0.0, "hi": 0.0, "p_not_better": 1.0}
    d = a - b
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boots = d[idx].mean(axis=1)
    return {
        "n": n,
        "mrr_a": float(a.mean()),
        "mrr_b": float(b.mean()),
        "diff": float(d.mean()),
        "lo": float(np.percentile(boots, 2.5)),
        "hi": float(np.percentile(boots, 97.5)),
        "p_not_better": float(np.mean(boots <= 0)),
        "targets_up": int(np.sum(d > 0)),
        "targets_down": int(np.sum(d < 0)),
    }
