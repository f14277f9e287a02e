"""Experiments configuration: what is refused at start, and stable, proportional assignment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidInputError
from core.experiments import ExperimentsConfig, load_experiments

GOOD = {
    "experiments": [
        {
            "name": "llm-rerank",
            "traffic": 0.5,
            "arms": [
                {"name": "control", "weight": 0.5},
                {"name": "llm", "weight": 0.5, "settings": {"use_llm": True}},
            ],
        },
        {
            "name": "ranker",
            "traffic": 0.4,
            "arms": [
                {"name": "learned", "weight": 0.7, "settings": {"ranker": "learned"}},
                {"name": "heuristic", "weight": 0.3, "settings": {"ranker": "heuristic"}},
            ],
        },
    ]
}


def _write(tmp_path: Path, data: Any, suffix: str = ".json") -> Path:
    p = tmp_path / f"experiments{suffix}"
    p.write_text(json.dumps(data) if suffix == ".json" else data)
    return p


def _with(**change: Any) -> dict[str, Any]:
    d = json.loads(json.dumps(GOOD))
    d["experiments"][0].update(change)
    return d


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (_with(arms=[]), "needs at least two arms"),
        (_with(arms=[{"name": "a", "weight": 1.0}]), "needs at least two arms"),
        (
            _with(
                arms=[
                    {"name": "a", "weight": 0.0},
                    {"name": "b", "weight": 1.0, "settings": {"use_llm": False}},
                ]
            ),
            "no weight (empty)",
        ),
        (
            _with(
                arms=[
                    {"name": "a", "weight": 0.5},
                    {"name": "b", "weight": 0.6, "settings": {"use_llm": False}},
                ]
            ),
            "add up to 1.1, not 1",
        ),
        (
            _with(
                arms=[
                    {"name": "a", "weight": 0.5},
                    {"name": "a", "weight": 0.5, "settings": {"use_llm": False}},
                ]
            ),
            "arm names repeat",
        ),
        (
            _with(
                arms=[
                    {"name": "a", "weight": 0.5, "settings": {"use_llm": True}},
                    {"name": "b", "weight": 0.5, "settings": {"use_llm": True}},
                ]
            ),
            "change the same things the same way",
        ),
        (_with(traffic=0.7), "experiments overlap: their traffic adds up to 1.1"),
        (_with(traffic=0), "traffic 0 is not in (0, 1]"),
        (_with(arms=[{"name": "a", "weight": 0.5, "settings": {"temperature": 1}}]), "temperature"),
        (_with(arms=[{"name": "a", "weight": 0.5, "settings": {"ranker": "magic"}}]), "ranker"),
        (_with(name="ranker"), "experiment names repeat"),
        (_with(name="has space"), "name"),
    ],
)
def test_bad_configurations_are_refused_with_the_reason(tmp_path: Path, data: Any, says: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        load_experiments(_write(tmp_path, data))
    assert says in err.value.message and "refused" in err.value.message


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="No such file"):
        load_experiments(tmp_path / "missing.yaml")
    with pytest.raises(InvalidInputError, match="not valid JSON or YAML"):
        load_experiments(_write(tmp_path, "experiments: [unclosed", ".yaml"))
    with pytest.raises(InvalidInputError, match="expected a mapping"):
        load_experiments(_write(tmp_path, "- a\n- b\n", ".yaml"))
    assert load_experiments(None).experiments == []


def test_yaml_and_json_read_the_same(tmp_path: Path) -> None:
    import yaml

    a = load_experiments(_write(tmp_path, GOOD))
    b = load_experiments(_write(tmp_path, yaml.safe_dump(GOOD), ".yaml"))
    assert a == b and [e.name for e in a.experiments] == ["llm-rerank", "ranker"]


def test_assignment_is_stable_and_proportional() -> None:
    cfg = ExperimentsConfig.model_validate(GOOD)
    users = [f"user-{i}" for i in range(20_000)]
    got = [cfg.assign(u) for u in users]
    again = ExperimentsConfig.model_validate(json.loads(json.dumps(GOOD)))  # another worker, restart
    assert got == [again.assign(u) for u in users]
    share = lambda pred: sum(1 for a in got if pred(a)) / len(users)  # noqa: E731
    assert share(lambda a: a is None) == pytest.approx(0.1, abs=0.01)  # 10% in no experiment
    assert share(lambda a: a and a.experiment == "llm-rerank") == pytest.approx(0.5, abs=0.015)
    assert share(lambda a: a and a.arm == "heuristic") == pytest.approx(0.4 * 0.3, abs=0.01)
    # resizing one experiment does not move users between the arms of the other
    bigger = json.loads(json.dumps(GOOD))
    bigger["experiments"][1]["traffic"] = 0.5
    cfg2 = ExperimentsConfig.model_validate(bigger)
    for u, a in zip(users, got, strict=True):
        if a is not None and a.experiment == "llm-rerank":
            b = cfg2.assign(u)
            assert b is not None and (b.experiment, b.arm) == (a.experiment, a.arm)
