"""The leak rule for categories on the dev split, the paired bootstrap, and the target wishes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import columns as C
from evaluation.chat_bank import CategoryWishes, WishBank, target_wishes
from evaluation.dev_split import Query
from evaluation.known_categories import KnownCategories
from evaluation.metrics import paired_bootstrap

T = pd.Timestamp("2012-11-20 12:00", tz="UTC")


def _test_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.USER: ["1", "2", "1"],
            C.ITEM: ["p", "p", "q"],
            C.TIME: [T, T - pd.Timedelta(hours=5), T + pd.Timedelta(hours=1)],
            C.CATEGORY: ["Bar", "Bar", "Park"],
            "trajectory_id": ["1_1", "2_1", "1_1"],
        }
    )


def test_a_category_is_known_only_after_a_val_row_names_the_place() -> None:
    kinds = KnownCategories(_test_rows())
    assert kinds.at("p", T - pd.Timedelta(hours=6)) is None  # before anyone checked in there
    assert kinds.at("p", T - pd.Timedelta(hours=5)) is None  # strictly before: not at that row
    assert kinds.at("p", T) == "Bar"  # user 2's earlier check-in made it known
    assert kinds.at("q", T + pd.Timedelta(hours=1)) is None  # the target's own row does not count
    assert kinds.at("never-in-val", T) is None


def test_paired_bootstrap() -> None:
    same = paired_bootstrap(np.array([1.0, 2.0, np.inf]), np.array([1.0, 2.0, np.inf]))
    assert same["diff"] == same["lo"] == same["hi"] == 0.0
    better = paired_bootstrap(np.array([1.0] * 50), np.array([2.0] * 50))
    assert better["diff"] == pytest.approx(0.5) and better["lo"] == pytest.approx(0.5)
    assert better["p_not_better"] == 0.0 and better["targets_up"] == 50
    mixed = paired_bootstrap(np.array([1.0, np.inf] * 30), np.array([np.inf, 1.0] * 30), seed=3)
    assert mixed["diff"] == 0.0 and mixed["lo"] < 0 < mixed["hi"]


def test_target_wishes_follow_the_targets_own_kind() -> None:
    bank = WishBank({"Park": CategoryWishes("Park", frozenset({"Park"}), ("a", "b", "c"))}, [], [])
    wish = target_wishes(_test_rows(), bank, seed=1)

    def q(user: str, traj: str) -> Query:
        return Query(user, traj, T, 0, "x", np.array([], dtype=int))

    assert wish(q("1", "1_1")) in {"a", "b", "c"}  # the trajectory's last row is a Park
    assert wish(q("1", "1_1")) == wish(q("1", "1_1"))  # deterministic
    assert wish(q("2", "2_1")) is None  # a Bar: not in this bank
