"""The shared score blend used by the served LLM rerank and the offline weight sweep."""

from __future__ import annotations

import numpy as np

from retrieval.blend import blend_scores


def test_blend_scales_each_scorer_then_weights() -> None:
    assert blend_scores([10.0, 0.0], [-5.0, -1.0], 0.25).tolist() == [0.75, 0.25]
    assert blend_scores([10.0, 0.0], [-5.0, -1.0], 0.0).tolist() == [1.0, 0.0]
    assert blend_scores([10.0, 0.0], [-5.0, -1.0], 1.0).tolist() == [0.0, 1.0]


def test_a_constant_scorer_contributes_the_middle_and_results_are_rounded() -> None:
    out = blend_scores([3.0, 3.0, 3.0], [0.0, 1.0, 3.0], 0.5)
    assert np.allclose(out, [0.25, 0.4167, 0.75])
    assert out[1] == 0.4167  # rounded to 4 decimals, as stored in the trace
