"""``chronotope eval-explain``: LLM explanations for sampled dev users, checked and timed
(evaluation/explain_eval.py says what is measured)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from cli.common import console, dev_world, handle_errors, progress, settings


@handle_errors
def eval_explain_cmd(
    history: Path | None = typer.Option(None, "--history", help="History CSV (checkins_train.csv format)."),
    test: Path | None = typer.Option(None, "--test", help="Test CSV (GETNext format, NYC_val.csv)."),
    fmt: str = typer.Option(
        "places",
        "--format",
        help="places (the NYC dev split) or movielens (the films store of the data dir).",
    ),
    json_out: Path = typer.Option(..., "--json", help="Write the figures (and examples) here."),
    sample: int = typer.Option(20, "--sample", help="Dev targets (users at a moment) to explain for."),
    k: int = typer.Option(5, "--k", help="Items shown and explained per request."),
    seed: int = typer.Option(0, "--seed", help="Seed for the sample."),
    rerank: bool = typer.Option(False, "--rerank/--no-rerank", help="Also rerank with the LLM first."),
    ranker: str = typer.Option("learned", "--ranker", help="learned | heuristic | a model file."),
    work_dir: Path | None = typer.Option(
        None, "--work-dir", help="Scratch store (default: <data dir>/eval-explain; rebuilt each run)."
    ),
) -> None:
    """Recommend k items for sampled dev users (or people of a films store) and report who wrote
    the explanations, whether they passed the faithfulness checker, and how long it took."""
    from core.errors import InvalidInputError
    from evaluation.dev_split import load_split
    from evaluation.explain_eval import run, sample_queries

    if fmt == "movielens":
        from cli.eval_films_llm import films_explain

        films_explain(json_out, sample, k, seed)
        return
    if fmt != "places":
        raise InvalidInputError(f"--format {fmt!r}: places or movielens")
    if history is None or test is None:
        raise InvalidInputError("places needs --history and --test")
    s = settings()
    if rerank:  # the LLM reranks every request of this run, whatever the default policy says
        s = s.model_copy(update={"llm": s.llm.model_copy(update={"rerank_when": "always"})})
    for p in (history, test):
        if not p.exists():
            raise InvalidInputError(f"{p}: no such file")
    if sample < 1 or not 1 <= k <= 20:
        raise InvalidInputError("--sample must be at least 1 and --k between 1 and 20")
    split = load_split(history, test, s.local_timezone)
    wd = work_dir or (s.data_dir / "eval-explain")
    world = dev_world(s, split, wd, ranker)
    picked = sample_queries(split, sample, seed)
    t0 = time.perf_counter()
    with progress("explained recommendations", len(picked)) as advance:
        summary = run(world, split, picked, k, advance)
    summary.update(
        model=s.llm.model_name if s.llm.enabled else None,
        seed=seed,
        seconds=round(time.perf_counter() - t0, 1),
    )
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(summary, indent=2, default=str))
    console.print_json(json.dumps({k2: v for k2, v in summary.items() if k2 != "examples"}, default=str))
    console.print(f"written to {json_out}")


def register(app: typer.Typer) -> None:
    app.command("eval-explain")(eval_explain_cmd)
