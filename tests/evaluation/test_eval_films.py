"""`chronotope eval --format movielens` on a slice of the real MovieLens data: the contract's
JSON, the dev split's leakage rules, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from core import columns as C
from domains.films.training import five_core, ratings_in_order
from evaluation.films import load_split

runner = CliRunner()
KEYS = {"n", "hr@1", "hr@5", "hr@10", "hr@20", "ndcg@10", "mrr", "ranker", "candidate_recall", "baselines"}


def test_the_dev_split_holds_out_each_persons_last_5core_rating_and_what_follows(
    real_films_slice: Path,
) -> None:
    split = load_split(real_films_slice, "dev")
    ratings = ratings_in_order(split.history)
    assert len(split.targets) == split.targets[C.USER].nunique() > 20
    raw = pd.read_csv(real_films_slice / "ratings_train.csv", dtype=str)
    for t in split.targets.itertuples(index=False):
        mine = ratings[ratings[C.USER] == getattr(t, C.USER)]
        # nothing of the person at or after their target stays in the history
        assert (pd.to_datetime(mine[C.TIME], utc=True) <= pd.Timestamp(getattr(t, C.TIME))).all()
        assert len(mine) < int((raw["userId"] == getattr(t, C.USER)).sum())
    assert five_core(ratings).any()


def test_eval_prints_the_contract(real_films_slice: Path, tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "ml.json"
    r = runner.invoke(
        app,
        ["eval", "--format", "movielens", "--history", str(real_films_slice), "--test", "dev",
         "--json", str(out), "--ranker", "heuristic", "--catalog", "all"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    got = json.loads(out.read_text())
    assert KEYS <= set(got) and got["ranker"] == "heuristic" and got["n"] > 20
    assert {"popularity (all time)", "sequence co-occurrence"} <= set(got["baselines"])
    assert 0.0 <= got["ndcg@10"] <= got["hr@10"] <= got["hr@20"] <= 1.0
    assert got["catalog"].startswith("all")
    sampled = tmp_path / "sample.json"
    r = runner.invoke(
        app,
        ["eval", "--format", "movielens", "--history", str(real_films_slice), "--test", "dev", "--json",
         str(sampled), "--ranker", "heuristic", "--sample", "10", "--seed", "3"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(sampled.read_text())["n"] == 10


def test_a_test_file_of_targets(real_films_slice: Path, tmp_path: Path, data_dir: Path) -> None:
    ratings = pd.read_csv(real_films_slice / "ratings_train.csv")
    last = ratings.sort_values("timestamp", kind="stable").groupby("userId").tail(1).head(8)
    test = tmp_path / "test.csv"
    last.to_csv(test, index=False)
    out = tmp_path / "t.json"
    r = runner.invoke(
        app,
        ["eval", "--format", "movielens", "--history", str(real_films_slice), "--test", str(test), "--json",
         str(out), "--ranker", "heuristic"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["n"] == 8


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--catalog", "some"], "5core or all"),
        (["--format", "netflix"], "places or movielens"),
        (["--test", "missing.csv"], "no such file"),
        (["--no-query-time"], "places options"),
    ],
)
def test_bad_input_is_a_clear_error(
    real_films_slice: Path, tmp_path: Path, data_dir: Path, args: list[str], says: str
) -> None:
    base = {
        "--format": "movielens",
        "--history": str(real_films_slice),
        "--test": "dev",
        "--json": str(tmp_path / "x.json"),
    }
    flags = dict(zip(args[::2], args[1::2], strict=False)) if len(args) > 1 else {}
    cmd = ["eval"]
    for k, v in {**base, **flags}.items():
        cmd += [k, v]
    cmd += [a for a in args if a.startswith("--") and a not in flags]
    r = runner.invoke(app, [*cmd, "--ranker", "heuristic"])
    assert r.exit_code != 0 and says in r.output.replace("\n", " ")
    assert not (tmp_path / "x.json").exists()


def test_the_films_chat_judge_reads_wishes_exclusions_and_names() -> None:
    """The judge of `eval-chat --format movielens`: genres of the top 3, an excluded genre or an
    already rated film is a violation, and a year-titled film in the reply that was not shown is
    caught (a reply that names only shown films passes, whatever words come before them)."""
    from types import SimpleNamespace

    from evaluation.film_chat import Wish, _judge

    def film(i: str, label: str, kinds: list[str], year: int) -> dict[str, object]:
        return {"item_id": i, "label": label, "kinds": kinds, "attributes": {"year": year}}

    items = [film("1", "Alien (1979)", ["Horror", "Sci-Fi"], 1979),
             film("2", "Aliens (1986)", ["Action", "Sci-Fi"], 1986),
             film("3", "Solaris (1972)", ["Drama", "Sci-Fi"], 1972)]  # fmt: skip
    items[0]["explanation"] = "You gave Heat (1995) 5 stars lately; this is Sci-Fi too."
    shown_only = 'I picked "Alien" (1979) and Aliens (1986); you gave Heat (1995) 5. Solaris (1972) too.'
    turn = SimpleNamespace(items=items, reply=shown_only, notes=[], understood_by="llm", reply_source="llm",
                           constraints={})  # fmt: skip
    row = _judge(Wish("a sci-fi film", "dev", genres=("Sci-Fi",)), turn, rated=set())
    assert row["understood"] and row["names_only_shown"] and row["violations"] == []
    turn.reply = shown_only + " You might also like Dune (1984)."
    assert not _judge(Wish("a sci-fi film", "dev", genres=("Sci-Fi",)), turn, rated=set())["names_only_shown"]
    no_horror = _judge(Wish("sci-fi, no horror", "dev", genres=("Sci-Fi",), avoid=("Horror",)), turn, set())
    assert no_horror["violations"] == ["1"] and not no_horror["understood"]
    assert _judge(Wish("sci-fi", "dev", genres=("Sci-Fi",)), turn, rated={"3"})["violations"] == ["3"]
