"""`chronotope eval` end to end on small synthetic files in both formats; sampling; leakage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from domains.places import PLACES
from evaluation.dev_split import load_split
from evaluation.harness import evaluate as _evaluate
from evaluation.llm_report import Reranked
from retrieval.rankers import HeuristicRanker as _Heuristic

PLAN = PLACES.retrieval_plan()


def HeuristicRanker() -> _Heuristic:  # noqa: N802  (reads like the class it stands for)
    return _Heuristic(PLAN.features)


def evaluate(split, ranker, **kw):  # type: ignore[no-untyped-def]
    return _evaluate(split, ranker, PLAN, **kw)


runner = CliRunner()
HIST_HEADER = "user_id,stan_poi_id,POI_id,POI_catid,POI_catname,latitude,longitude,UTC_time_minute,split\n"
TEST_HEADER = (
    "user_id,POI_id,POI_catid,POI_catid_code,POI_catname,latitude,longitude,timezone,UTC_time,local_time,"
    "day_of_week,norm_in_day_time,trajectory_id,norm_day_shift,norm_relative_time,stan_poi_id\n"
)


def _files(tmp_path: Path, n_users: int = 12) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    hist, test = [], []
    t0 = datetime(2012, 4, 2, tzinfo=UTC)
    for u in range(n_users):
        a, b = 10 + u, 100 + u  # each user shuttles between two places
        for d in range(40):
            for h, p in ((12, a), (18, b)):
                t = t0 + timedelta(days=d, hours=h)
                hist.append(f"{u},{p},,,,{40.7 + p * 1e-3},{-74 + p * 1e-3},{t:%Y-%m-%d %H:%M},train")
            if rng.random() < 0.3:
                p = int(rng.integers(500, 520))
                t = t0 + timedelta(days=d, hours=21)
                hist.append(f"{u},{p},,,,{40.7 + p * 1e-4},{-74.0},{t:%Y-%m-%d %H:%M},train")
        for k in range(2):
            day = t0 + timedelta(days=60 + 3 * k)
            for h, p in ((11, a), (12, a), (18, b)):
                t = day + timedelta(hours=h)
                test.append(
                    f"{u},v{p},c,1,Cat,{40.7 + p * 1e-3},{-74 + p * 1e-3},-240,{t:%Y-%m-%d %H:%M:%S}+00:00,"
                    f"x,0,0.5,{u}_{k},0,0.5,{p}"
                )
    h = tmp_path / "hist.csv"
    h.write_text(HIST_HEADER + "\n".join(hist) + "\n")
    t = tmp_path / "test.csv"
    t.write_text(TEST_HEADER + "\n".join(test) + "\n")
    return h, t


def test_cli_eval_writes_contract_json(tmp_path: Path, data_dir: Path) -> None:
    h, t = _files(tmp_path)
    out = tmp_path / "out.json"
    res = runner.invoke(
        app, ["eval", "--history", str(h), "--test", str(t), "--json", str(out), "--ranker", "heuristic"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {"n", "acc@1", "acc@5", "acc@10", "ndcg@10", "mrr", "ranker"} <= data.keys()
    assert data["n"] == 24 and data["ranker"] == "heuristic"
    assert data["acc@1"] > 0.9  # the routine is trivially predictable here
    assert "baselines" in data and "user frequency" in data["baselines"]
    assert "acc@1" in res.output


def test_sample_is_deterministic(tmp_path: Path) -> None:
    h, t = _files(tmp_path)
    split = load_split(h, t)
    a = evaluate(split, HeuristicRanker(), sample=5, seed=3)
    b = evaluate(split, HeuristicRanker(), sample=5, seed=3)
    c = evaluate(split, HeuristicRanker(), sample=5, seed=4)
    assert a["n"] == 5 and a["mrr"] == b["mrr"]
    assert (a["acc@1"], a["mrr"]) == (b["acc@1"], b["mrr"]) and c["n"] == 5


def test_target_never_reaches_its_input(tmp_path: Path) -> None:
    """Leakage guard: changing a target's POI (and everything after it) leaves that query's
    ranking untouched; only the truth it is scored against changes."""
    h, t = _files(tmp_path)
    split = load_split(h, t)
    q = split.queries[0]
    from evaluation.dev_split import user_input
    from evaluation.harness import baseline_scores  # noqa: F401  (import check: module loads)

    by_h = {str(u): g for u, g in split.history.groupby("user_id")}
    by_t = {str(u): g for u, g in split.test.groupby("user_id")}
    before = user_input(split, q, by_h, by_t)
    assert (before["ts"] < q.ts).all()
    assert not ((before["ts"] == q.ts) & (before["item_id"] == q.target_item)).any()
    # Perturb the future: the target row's POI and all later rows.
    mutated = split.test.copy()
    later = mutated["ts"] >= q.ts
    mutated.loc[later, "item_id"] = "999999"
    split2 = type(split)(split.history, mutated, split.queries)
    after = user_input(split2, q, by_h, {str(u): g for u, g in mutated.groupby("user_id")})
    assert before.reset_index(drop=True).equals(after.reset_index(drop=True))


def test_errors(tmp_path: Path, data_dir: Path) -> None:
    h, t = _files(tmp_path)
    res = runner.invoke(
        app, ["eval", "--history", str(tmp_path / "nope.csv"), "--test", str(t), "--json", "o.json"]
    )
    assert res.exit_code == 1
    res = runner.invoke(
        app,
        [
            "eval",
            "--history",
            str(h),
            "--test",
            str(t),
            "--json",
            str(tmp_path / "o.json"),
            "--ranker",
            "magic",
        ],
    )
    assert res.exit_code == 1 and "unknown ranker" in res.output


@pytest.mark.data
@pytest.mark.slow
def test_dev_split_sample_beats_baselines(tmp_path: Path) -> None:
    from tests.conftest import DATASETS

    split = load_split(DATASETS / "checkins_train.csv", DATASETS / "NYC_val.csv")
    assert len(split.queries) == 1559
    res = evaluate(split, HeuristicRanker(), sample=300, seed=0)
    assert res["mrr"] > res["baselines"]["user frequency"]["mrr"]
    assert res["mrr"] > res["baselines"]["markov"]["mrr"] > res["baselines"]["popularity"]["mrr"]
    assert res["candidate_recall"] >= 0.8


def test_features_ignore_the_target_and_the_future(tmp_path: Path) -> None:
    """Leakage guard on the features themselves: the query's feature matrix is identical when the
    target's POI, its coordinates and every later row (of anyone) are changed."""
    from evaluation.harness import query_matrix

    h, t = _files(tmp_path)
    split = load_split(h, t)
    q = split.queries[len(split.queries) // 2]
    f1 = query_matrix(split, q, PLAN)
    mutated = split.test.copy()
    later = mutated["ts"] >= q.ts
    mutated.loc[later, "item_id"] = "512"
    mutated.loc[later, "lat"] = 41.5
    mutated.loc[later, "lon"] = -73.0
    f2 = query_matrix(type(split)(split.history, mutated, split.queries), q, PLAN)
    np.testing.assert_array_equal(f1, f2)


def test_rank_train_then_eval_with_the_model(tmp_path: Path, data_dir: Path) -> None:
    """`rank train --test` never trains on the test period; eval then loads the saved model."""
    h, t = _files(tmp_path, n_users=20)
    n_before = len(h.read_text().splitlines()) - 1
    with h.open("a") as fh:  # rows inside the test period: must not be trained on
        fh.write("3,7,,,,40.7,-74.0,2012-06-02 12:00,val\n3,8,,,,40.7,-74.0,2012-06-02 13:00,val\n")
    models = tmp_path / "models"
    res = runner.invoke(
        app,
        ["rank", "train", "--history", str(h), "--test", str(t), "--weeks", "2", "--out", str(models)],
    )
    assert res.exit_code == 0, res.output
    (path,) = models.glob("ranker-*.txt")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["history_rows"] == n_before  # rows at/after the test start dropped
    out = tmp_path / "out.json"
    res = runner.invoke(
        app, ["eval", "--history", str(h), "--test", str(t), "--json", str(out), "--ranker", str(path)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["ranker"].startswith("learned-lgbm@") and data["model"]["version"] in path.name
    assert data["acc@1"] >= data["baselines"]["popularity"]["acc@1"]


def _reversing_reranker(q: object, inp: object, top: list, wish: str | None) -> Reranked:
    """A stand-in LLM that prefers the feature order reversed; returns the order it would serve at
    blend weight 1 (pure LLM), with its raw scores, as agent.llm.rerank does."""
    from dataclasses import replace

    scored = [replace(c, llm_score=float(i)) for i, c in enumerate(top)]  # last = best
    ids = list(range(len(top)))
    return Reranked(sorted(scored, key=lambda c: -(c.llm_score or 0.0)), [[float(i) for i in ids]], [ids])


def _first_listed_reranker(q: object, inp: object, top: list, wish: str | None) -> Reranked:
    """A stand-in LLM with pure position bias: in each of two orders (as given, reversed) it
    prefers whatever is listed first, so its averaged scores say nothing."""
    from dataclasses import replace

    n = len(top)
    given = [-float(i) for i in range(n)]
    reversed_ = [-float(n - 1 - i) for i in range(n)]
    mean = [(a + b) / 2 for a, b in zip(given, reversed_, strict=True)]
    out = [replace(c, llm_score=m) for c, m in zip(top, mean, strict=True)]
    return Reranked(out, [given, reversed_], [list(range(n)), list(range(n))[::-1]])


def test_llm_eval_reports_features_alone_and_a_blend_sweep_on_the_same_targets(tmp_path: Path) -> None:
    h, t = _files(tmp_path)
    split = load_split(h, t)
    plain = evaluate(split, HeuristicRanker())
    res = evaluate(split, HeuristicRanker(), reranker=_reversing_reranker, rerank_top=5)
    alone, sweep = res["without_reranker"], res["blend_sweep"]
    assert alone["mrr"] == pytest.approx(plain["mrr"]) and alone["n"] == plain["n"]
    assert sweep["0.0"]["mrr"] == pytest.approx(plain["mrr"])  # weight 0: the feature order
    assert sweep["1.0"]["mrr"] == pytest.approx(res["mrr"])  # weight 1: the LLM's order, as served
    assert res["mrr"] < plain["mrr"]  # reversing a near-perfect order must cost something
    assert set(sweep) == {f"{0.1 * i:.1f}" for i in range(11)}


def test_llm_report_has_paired_intervals_by_slice(tmp_path: Path) -> None:
    h, t = _files(tmp_path)
    res = evaluate(load_split(h, t), HeuristicRanker(), reranker=_reversing_reranker, rerank_top=5)
    vs = res["llm"]["vs_ranker"]
    assert set(vs) >= {"all", "revisit"}
    b = vs["all"]
    assert b["diff"] == pytest.approx(res["mrr"] - res["without_reranker"]["mrr"])
    assert b["lo"] <= b["diff"] <= b["hi"] and b["hi"] < 0  # reversing a near-perfect order is worse
    assert b["targets_down"] > 0 and b["p_not_better"] == 1.0
    assert "position_bias" not in res["llm"]  # one order: nothing to compare


def test_position_bias_check_sees_a_reranker_that_picks_the_first_listed(tmp_path: Path) -> None:
    h, t = _files(tmp_path)
    split = load_split(h, t)
    plain = evaluate(split, HeuristicRanker())
    res = evaluate(split, HeuristicRanker(), reranker=_first_listed_reranker, rerank_top=5)
    pb = res["llm"]["position_bias"]
    assert pb["orders"] == 2 and pb["top_changes"] == 1.0 and pb["top_is_listed_first"] == [1.0, 1.0]
    assert pb["top_listed_at"][0] == 2 * res["n"] and sum(pb["top_listed_at"]) == 2 * res["n"]
    # order 1 alone agrees with the feature order, order 2 alone reverses it; averaged, no change
    first, second = pb["per_order"]["order 1"], pb["per_order"]["order 2"]
    assert first["llm_alone_mrr"] == pytest.approx(plain["mrr"])
    assert second["llm_alone_mrr"] < plain["mrr"]
    assert pb["averaged"]["blend_mrr"] == pytest.approx(plain["mrr"])


def test_wishes_reach_the_reranker_only_and_name_the_slice(tmp_path: Path) -> None:
    h, t = _files(tmp_path)
    split = load_split(h, t)
    seen: list[str | None] = []

    def recording(q: object, inp: object, top: list, wish: str | None) -> Reranked:
        seen.append(wish)
        return _reversing_reranker(q, inp, top, wish)

    only_user_0 = lambda q: "somewhere quiet" if q.user_id == "0" else None  # noqa: E731
    res = evaluate(split, HeuristicRanker(), reranker=recording, rerank_top=5, wishes=only_user_0)
    assert res["n"] == 2 and seen == ["somewhere quiet"] * 2  # user 0's two trajectories only
    assert "all, with request text" in res["llm"]["vs_ranker"]
    assert res["setting"]["request_text"].startswith("a chat wish")
    assert evaluate(split, HeuristicRanker())["setting"]["request_text"] == "none"


def test_a_reranker_that_invents_an_item_is_refused(tmp_path: Path) -> None:
    from dataclasses import replace

    h, t = _files(tmp_path, n_users=3)

    def inventing(q: object, inp: object, top: list, wish: str | None) -> Reranked:
        return Reranked([replace(top[0], item_id="not-a-candidate"), *top[1:]], [], [])

    with pytest.raises(RuntimeError, match="not among its candidates"):
        evaluate(load_split(h, t), HeuristicRanker(), reranker=inventing)


@pytest.mark.slow
def test_eval_explain_reports_who_wrote_and_the_checker(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the LLM off every explanation is the template's, and every served one passes the
    checker; the real model's figures come from the same command (docs/measurements.md)."""
    h, t = _files(tmp_path)
    monkeypatch.setenv("CHRONOTOPE_LLM__ENABLED", "false")
    out = tmp_path / "explain.json"
    r = runner.invoke(
        app,
        ["eval-explain", "--history", str(h), "--test", str(t), "--json", str(out), "--sample", "4",
         "--k", "3", "--ranker", "heuristic"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert d["n_requests"] == 4 and d["n_explanations"] == 12
    assert d["llm-written (served)"] == 0.0 and d["served explanations passing the checker"] == 1.0
    assert d["llm texts passing the checker, first try"] is None  # the model was never asked
    assert d["latency_ms"]["explain_3_p50"] is not None and d["examples"]
    bad = runner.invoke(
        app, ["eval-explain", "--history", str(h), "--test", str(t), "--json", str(out), "--k", "0"]
    )
    assert bad.exit_code != 0 and "--k" in bad.output


def test_where_next_settings(tmp_path: Path, data_dir: Path) -> None:
    """--no-query-time ranks at the check-in before the target; --prefix-only drops the user's
    earlier test trajectories from the input; the JSON says which setting ran."""
    from evaluation.dev_split import user_input

    h, t = _files(tmp_path)
    split = load_split(h, t, query_time=False, prefix_only=True)
    by_h = {str(u): g for u, g in split.history.groupby("user_id")}
    by_t = {str(u): g for u, g in split.test.groupby("user_id")}
    q = next(q for q in split.queries if q.trajectory_id.endswith("_1"))  # the user's second trajectory
    ts, _ = q.rank_time()
    assert ts == q.prev_ts and ts < q.ts  # 12:00, the target is at 18:00
    inp = user_input(split, q, by_h, by_t)
    test_rows = inp[inp["ts"] >= split.test["ts"].min()]
    assert len(test_rows) == 2 and set(test_rows["trajectory_id"]) == {q.trajectory_id}
    full = load_split(h, t)
    q_full = next(x for x in full.queries if x.trajectory_id == q.trajectory_id)
    assert len(user_input(full, q_full, by_h, by_t)) == len(inp) + 3  # the first trajectory too
    out = tmp_path / "next.json"
    args = ["eval", "--history", str(h), "--test", str(t), "--json", str(out), "--ranker", "heuristic"]
    res = runner.invoke(app, [*args, "--no-query-time", "--prefix-only"])
    assert res.exit_code == 0, res.output
    setting = json.loads(out.read_text())["setting"]
    assert "before the target" in setting["query_time"] and "prefix only" in setting["input"]


def test_eval_trains_on_its_own_history_not_the_served_model(tmp_path: Path, data_dir: Path) -> None:
    """The store's served model may have trained on the targets (the demo's does: checkins_train.csv
    holds the dev trajectories), so `--ranker learned` is a model trained on exactly the split's
    history, cached by its content and found again on the next run."""
    h, t = _files(tmp_path, n_users=16)
    served = data_dir / "models"
    res = runner.invoke(app, ["rank", "train", "--history", str(h), "--weeks", "1", "--out", str(served)])
    assert res.exit_code == 0, res.output
    (planted,) = served.glob("ranker-*.txt")
    out = tmp_path / "out.json"
    args = ["eval", "--history", str(h), "--test", str(t), "--json", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    first = json.loads(out.read_text())
    (own,) = (served / "eval").glob("places-*/ranker-*.txt")
    assert first["model"]["version"] in own.name and first["model"]["version"] not in planted.name
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "trained on this history" in res.output, res.output
    assert json.loads(out.read_text())["model"]["version"] == first["model"]["version"]
