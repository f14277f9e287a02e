"""Online experiments through the real API: simulated users in two arms, the admin report finding
the planted difference, the arm on every response and trace, and a bad file refused at start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.auth import create_key
from cli.main import app as cli
from core.db import open_store
from core.errors import InvalidInputError
from core.ingest import write_events
from core.ingest.reading import ATTRS, LINE
from core.settings import Settings
from jobs.mine import mine_users
from tests.api.conftest import bearer
from tests.retrieval.conftest import world

WHEN = "2012-05-20T16:00:00+00:00"
ARMS = {
    "experiments": [
        {
            "name": "feedback-rules",
            "description": "reactions lower and raise similar places, or only hide rejected ones",
            "arms": [
                {"name": "control", "weight": 0.5},
                {"name": "no-learning", "weight": 0.5, "settings": {"feedback_learning": False}},
            ],
        }
    ]
}
# The planted difference: simulated people accept the first place more often in one arm.
ACCEPT = {"control": 0.25, "no-learning": 0.55}


@pytest.fixture
def experiment_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str, Path]]:
    path = data_dir.parent / "experiments.json"
    path.write_text(json.dumps(ARMS))
    monkeypatch.setenv("CHRONOTOPE_LLM__ENABLED", "false")
    monkeypatch.setenv("CHRONOTOPE_RETRIEVAL__RANKER", "heuristic")
    monkeypatch.setenv("CHRONOTOPE_API__RATE_LIMIT_PER_S", "0")
    monkeypatch.setenv("CHRONOTOPE_API__REMINE_AFTER_EVENTS", "false")
    monkeypatch.setenv("CHRONOTOPE_EXPERIMENTS_FILE", str(path))
    settings = Settings(env="test")
    _, factory = open_store(settings)
    ev, _items = world(n_users=48, days=14, seed=5)
    ev[ATTRS] = None
    ev[LINE] = range(len(ev))
    write_events(factory, ev)
    mine_users(factory, data_dir=settings.data_dir, workers=1)
    with factory() as s:
        admin = create_key(s, "admin")
        s.commit()
    with TestClient(create_app(settings, use_llm=False)) as c:
        yield c, admin, path


def test_two_arms_driven_by_simulated_users_and_the_report_finds_the_difference(
    experiment_app: tuple[TestClient, str, Path],
) -> None:
    c, admin, path = experiment_app
    rng = np.random.default_rng(11)
    served: dict[str, str] = {}
    for u in range(48):
        user = f"u{u}"
        for _ in range(5):
            r = c.post(
                "/v1/recommendations",
                headers=bearer(admin),
                json={"user_id": user, "k": 3, "context": {"time": WHEN}},
            )
            assert r.status_code == 200, r.text
            out = r.json()
            arm = out["experiment"]["arm"]
            assert out["experiment"]["name"] == "feedback-rules"
            assert served.setdefault(user, arm) == arm  # a user stays in their arm
            kind = "accepted" if rng.random() < ACCEPT[arm] else "clicked" if rng.random() < 0.2 else None
            if kind:
                fb = c.post(
                    f"/v1/recommendations/{out['recommendation_id']}/feedback",
                    headers=bearer(admin),
                    json={"kind": kind, "item_id": out["items"][0]["item_id"]},
                )
                assert fb.status_code == 201
    assert set(served.values()) == {"control", "no-learning"}
    # the arm is on the trace and in the support list
    trace = c.get(f"/v1/recommendations/{out['recommendation_id']}", headers=bearer(admin)).json()
    assert trace["experiment"] == {"name": "feedback-rules", "arm": served["u47"]}
    assert trace["request"]["experiment"]["changes"] == (
        {} if served["u47"] == "control" else {"feedback_learning": False}
    )
    listed = c.get("/v1/users/u47/recommendations", headers=bearer(admin)).json()["recommendations"]
    assert {r["arm"] for r in listed} == {served["u47"]}

    report = c.get("/v1/admin/experiments/report", headers=bearer(admin)).json()
    (exp,) = report["experiments"]
    arms = {a["arm"]: a for a in exp["arms"]}
    assert exp["control"] == "control"
    assert sum(a["recommendations"] for a in arms.values()) == 48 * 5
    assert sum(a["users"] for a in arms.values()) == 48
    print({n: (a["accept"], a["recommendations"]) for n, a in arms.items()})
    for name, a in arms.items():
        lo, hi = a["accept"]["ci95"]
        assert lo < a["accept"]["rate"] < hi and abs(a["accept"]["rate"] - ACCEPT[name]) < 0.12
    diff = arms["no-learning"]["vs_control"]["accept"]
    assert diff["ci95"][0] > 0 and diff["p_value"] < 0.01  # the planted difference is found
    assert diff["difference"] == pytest.approx(
        arms["no-learning"]["accept"]["rate"] - arms["control"]["accept"]["rate"], abs=1e-3
    )
    # click rate counts accepts too: at least the accept rate
    assert all(a["click"]["rate"] >= a["accept"]["rate"] for a in arms.values())
    cfg = c.get("/v1/admin/experiments", headers=bearer(admin)).json()
    assert [e["name"] for e in cfg["experiments"]] == ["feedback-rules"]

    # the CLI reads the same store and says the same
    cli_out = CliRunner().invoke(cli, ["experiments", "report", "--json", "--file", str(path)])
    assert cli_out.exit_code == 0, cli_out.output
    assert json.loads(cli_out.stdout)["experiments"][0]["arms"] == exp["arms"]
    table = CliRunner().invoke(cli, ["experiments", "report", "--file", str(path)])
    print(table.stdout)
    assert "no-learning vs control: accept rate +" in table.stdout


def test_a_bad_experiments_file_stops_the_server_at_start(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = json.loads(json.dumps(ARMS))
    bad["experiments"][0]["arms"][1]["weight"] = 0.2
    path = data_dir.parent / "bad.json"
    path.write_text(json.dumps(bad))
    monkeypatch.setenv("CHRONOTOPE_LLM__ENABLED", "false")
    monkeypatch.setenv("CHRONOTOPE_EXPERIMENTS_FILE", str(path))
    with pytest.raises(InvalidInputError, match="arm weights add up to 0.7, not 1"):
        with TestClient(create_app(Settings(env="test"), use_llm=False)):
            pass
    out = CliRunner().invoke(cli, ["experiments", "check"])
    assert out.exit_code == 1 and "arm weights add up to 0.7, not 1" in out.output
