"""Ways to counter the LLM's position (letter) bias, compared on the very same calls.

Each reranked target was scored in several candidate orders (as ranked, reversed, rotations:
agent.llm.rerank.orders). From those scores, without calling the model again:

- one order as ranked (what a single call serves);
- one order with a letter prior removed: the mean log-probability the model gives each listed
  position, estimated on the other targets (cross-fitted by fold, so no target calibrates itself);
- all orders averaged (what ``CHRONOTOPE_LLM__RERANK_ORDERS`` serves), with and without the prior;
- the LLM's score as a LambdaRank feature beside the ranker's score (cross-fitted by fold).

Each is compared with the ranker alone on the same targets by a paired bootstrap of the MRR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from evaluation.llm_report import SweepInput, blend_ranks
from evaluation.metrics import paired_bootstrap, summarize

FOLDS = 5


def _folds(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n) % FOLDS


def _priors(scored: list[SweepInput], fold: np.ndarray, n_orders: int, orders: list[int]) -> list[np.ndarray]:
    """Per fold: the mean log-probability at each listed position over the other folds' targets."""
    width = max(len(si.feature) for si in scored)
    out = []
    for f in range(FOLDS):
        total, count = np.zeros(width), np.zeros(width)
        for si, g in zip(scored, fold, strict=True):
            if g == f:
                continue
            for o in orders:
                for pos, i in enumerate(si.orders[o]):
                    total[pos] += si.by_order[o][i]
                    count[pos] += 1
        out.append(total / np.maximum(count, 1))
    return out


def _scores(si: SweepInput, orders: list[int], prior: np.ndarray | None) -> list[float]:
    n = len(si.feature)
    acc = np.zeros(n)
    for o in orders:
        for pos, i in enumerate(si.orders[o]):
            acc[i] += si.by_order[o][i] - (prior[pos] if prior is not None else 0.0)
    return list(acc / len(orders))


def position_study(inputs: list[SweepInput], feature_ranks: np.ndarray, weight: float) -> dict[str, Any]:
    scored_at = [i for i, si in enumerate(inputs) if si.llm is not None and len(si.by_order) >= 2]
    if not scored_at:
        return {"note": "needs targets scored in two or more orders (CHRONOTOPE_LLM__RERANK_ORDERS >= 2)"}
    scored = [inputs[i] for i in scored_at]
    k = min(len(si.by_order) for si in scored)
    fold = _folds(len(scored))
    fold_of = {id(si): int(g) for si, g in zip(scored, fold, strict=True)}
    prior_one, prior_all = _priors(scored, fold, k, [0]), _priors(scored, fold, k, list(range(k)))
    fr = feature_ranks[scored_at]
    sub = [inputs[i] for i in scored_at]

    def variant(orders: list[int], priors: list[np.ndarray] | None) -> Callable[[SweepInput], Any]:
        return lambda si: _scores(si, orders, priors[fold_of[id(si)]] if priors else None)

    variants = {
        "one order, as ranked": variant([0], None),
        "one order, letter prior removed": variant([0], prior_one),
        f"{k} orders averaged": variant(list(range(k)), None),
        f"{k} orders averaged, letter prior removed": variant(list(range(k)), prior_all),
    }
    out: dict[str, Any] = {
        "targets": len(scored),
        "orders": k,
        "letter_prior_one_order": [round(float(v), 3) for v in np.mean(prior_one, axis=0)],
        "ranker_alone_mrr": summarize(fr)["mrr"],
    }
    for name, fn in variants.items():
        blended = blend_ranks(sub, fr, weight, fn)
        alone = blend_ranks(sub, fr, 1.0, fn)
        out[name] = {
            "blend_mrr": summarize(blended)["mrr"],
            "blend_ndcg@10": summarize(blended)["ndcg@10"],
            "llm_alone_mrr": summarize(alone)["mrr"],
            "blend_vs_ranker": paired_bootstrap(blended, fr),
        }
    out["llm score as a LambdaRank feature"] = _as_feature(sub, fr, variant(list(range(k)), prior_all), fold)
    return out


def _as_feature(
    inputs: list[SweepInput], feature_ranks: np.ndarray, llm_of: Callable[[SweepInput], Any], fold: np.ndarray
) -> dict[str, Any]:
    """A small LambdaRank over (ranker score, its position, LLM score) for the top N, trained on
    the other folds' targets and applied to each fold's."""
    import lightgbm as lgb

    def rows(si: SweepInput) -> np.ndarray:
        llm = np.asarray(llm_of(si))
        return np.column_stack([si.feature, np.arange(len(si.feature)), llm, llm - llm.max()])

    ranks = feature_ranks.copy()
    for f in range(FOLDS):
        train = [si for si, g in zip(inputs, fold, strict=True) if g != f and si.target_pos is not None]
        if len(train) < 20:
            return {"note": "too few targets with the truth in the top N to train on"}
        x = np.vstack([rows(si) for si in train])
        y = np.concatenate([(np.arange(len(si.feature)) == si.target_pos).astype(float) for si in train])
        params = {"objective": "lambdarank", "num_leaves": 7, "min_data_in_leaf": 20, "learning_rate": 0.05}
        booster = lgb.train(
            {**params, "verbose": -1, "num_threads": 2, "seed": 0},
            lgb.Dataset(x, y, group=[len(si.feature) for si in train]),
            num_boost_round=100,
        )
        for i, (si, g) in enumerate(zip(inputs, fold, strict=True)):
            if g == f and si.target_pos is not None:
                order = np.argsort(-np.asarray(booster.predict(rows(si))), kind="stable")
                ranks[i] = float(np.flatnonzero(order == si.target_pos)[0] + 1)
    return {
        "mrr": summarize(ranks)["mrr"],
        "ndcg@10": summarize(ranks)["ndcg@10"],
        "vs_ranker": paired_bootstrap(ranks, feature_ranks),
    }
