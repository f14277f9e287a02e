"""The one blend of a feature ranker's scores with a second scorer's (the LLM's): both min-max
scaled over the candidates, then weighted. Served recommendations (agent.llm.rerank) and the
offline blend-weight sweep (evaluation.harness) both call this, so the sweep measures what is served."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _minmax(xs: np.ndarray) -> np.ndarray:
    span = xs.max() - xs.min()
    return np.full_like(xs, 0.5) if span < 1e-12 else (xs - xs.min()) / span


def blend_scores(feature: Sequence[float], other: Sequence[float], weight: float) -> np.ndarray:
    """(1 - weight)·minmax(feature) + weight·minmax(other), rounded to 4 decimals (the stored
    final score; sort by it, stably, to get the served order)."""
    f = _minmax(np.asarray(feature, dtype=float))
    o = _minmax(np.asarray(other, dtype=float))
    return np.round((1 - weight) * f + weight * o, 4)
