import math

import numpy as np
import pytest

from evaluation.metrics import rank_of, summarize


def test_exact_numbers_on_a_hand_made_example() -> None:
    m = summarize(np.array([1, 3, 12, math.inf]))
    assert m["n"] == 4
    assert m["acc@1"] == 0.25
    assert m["acc@5"] == 0.5
    assert m["acc@10"] == 0.5
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 12 + 0) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert m["precision@5"] == pytest.approx(0.1)
    assert m["f1@5"] == pytest.approx(2 * 0.1 * 0.5 / 0.6)


def test_rank_of_ties_and_misses() -> None:
    allowed = np.array([True, True, True, False])
    assert rank_of(np.array([0.1, 0.9, 0.5, 9.0]), 1, allowed) == 1  # the disallowed item does not count
    assert rank_of(np.array([0.1, 0.9, 0.5, 9.0]), 3, allowed) == math.inf  # not rankable: a miss
    assert rank_of(np.array([0.1, 0.9, 0.5, 9.0]), -1, allowed) == math.inf  # unknown POI: a miss
    assert rank_of(np.zeros(4), 0, allowed) == 2  # a constant scorer gets no credit for ties
