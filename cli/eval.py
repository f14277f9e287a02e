"""``chronotope eval``: offline evaluation on the protocol of shared/datasets/foursquare_nyc/README.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from cli.common import console, handle_errors, progress, settings, trained_on_folder


@handle_errors
def eval_cmd(
    history: Path = typer.Option(
        ..., "--history", help="History: a CSV (checkins_train.csv format), or a MovieLens folder."
    ),
    test: Path = typer.Option(
        ..., "--test", help="Targets: a GETNext CSV (NYC_val.csv), or for movielens a ratings CSV or 'dev'."
    ),
    fmt: str = typer.Option(
        "places", "--format", help="places (NYC check-ins, GETNext targets) or movielens (films)."
    ),
    catalog: str = typer.Option("5core", "--catalog", help="movielens: rank the 5core films or all films."),
    json_out: Path = typer.Option(..., "--json", help="Write the metrics here as JSON."),
    ranker: str = typer.Option("learned", "--ranker", help="learned | heuristic | llm | a model file."),
    sample: int | None = typer.Option(None, "--sample", help="Evaluate N targets drawn with --seed."),
    seed: int = typer.Option(0, "--seed", help="Seed for --sample."),
    pool: int = typer.Option(300, "--pool", help="Candidates handed to the ranker per target."),
    no_query_time: bool = typer.Option(
        False, "--no-query-time", help="Rank at the time of the check-in before the target ('where next?')."
    ),
    prefix_only: bool = typer.Option(
        False, "--prefix-only", help="Test input: only the target trajectory's prefix (GETNext-like)."
    ),
    with_wish: bool = typer.Option(
        False,
        "--with-wish",
        help="Give each target a chat wish for its kind (evaluation/chat_wishes.yaml) that only the LLM "
        "reads; targets of kinds the bank lacks are left out. For --ranker llm.",
    ),
) -> None:
    """Rank every item for each target at its time (places: the last check-in of each test
    trajectory; films: each test rating); print and save metrics with baselines."""
    from core.errors import InvalidInputError

    if fmt == "movielens":
        from cli.eval_films import eval_films

        if with_wish or no_query_time or prefix_only:
            raise InvalidInputError("--with-wish, --no-query-time and --prefix-only are places options")
        target = "dev" if str(test) == "dev" and not test.exists() else str(test)
        result = eval_films(history, target, json_out, ranker, catalog, sample, seed, pool)
        _print_table(_films_rows(result), "films")
        if "llm" in result:
            _print_llm(result["llm"])
        console.print(
            f"candidate recall: {result['candidate_recall']:.3f}; {result['timing_s']['total']:.1f} s; "
            f"written to {json_out}"
        )
        return
    if fmt != "places":
        raise InvalidInputError(f"--format {fmt!r}: places or movielens")
    from domains.places import PLACES
    from evaluation.dev_split import load_split
    from evaluation.harness import evaluate, table_rows
    from retrieval.rankers import LearnedRanker, load_ranker

    s = settings()
    for p in (history, test):
        if not p.exists():
            raise InvalidInputError(f"{p}: no such file")
    split = load_split(history, test, s.local_timezone, query_time=not no_query_time, prefix_only=prefix_only)
    plan = PLACES.retrieval_plan()
    reranker = None
    base_name = "learned" if ranker == "llm" else ranker
    if base_name == "learned":
        model: Any = _places_trained_on(split.history, s.models_dir, plan.features)
    else:
        model = load_ranker(base_name, s.models_dir, plan.features)
    if ranker == "llm":
        try:
            from evaluation.llm_rerank import make_eval_reranker
        except ImportError as exc:
            raise InvalidInputError(f"the llm ranker is not available in this build ({exc})") from exc
        reranker = make_eval_reranker(s, PLACES)
    if sample is not None and sample <= 0:
        raise InvalidInputError("--sample must be a positive number")
    if with_wish and reranker is None:
        raise InvalidInputError("--with-wish needs --ranker llm: no other ranker reads request text")
    wishes = None
    n_targets = len(split.queries)
    if with_wish:
        from evaluation.chat_bank import load_bank, target_wishes

        wishes = target_wishes(split.test, load_bank(), seed)
        n_targets = sum(wishes(q) is not None for q in split.queries)
    n = min(sample or n_targets, n_targets)
    with progress(f"evaluate {getattr(model, 'name', ranker)}", n) as advance:
        result = evaluate(
            split,
            model,
            plan,
            pool_size=pool,
            sample=sample,
            seed=seed,
            reranker=reranker,
            blend_weight=s.llm.blend_weight,
            wishes=wishes,
            progress=advance,
        )
    if reranker is not None:
        result["llm_failures"] = reranker.failures["n"]  # type: ignore[attr-defined]
        result["llm_blend_weight"] = s.llm.blend_weight
    if isinstance(model, LearnedRanker):
        result["model"] = model.meta
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=2, default=str))
    _print_table(table_rows(result))
    if "llm" in result:
        _print_llm(result["llm"])
    console.print(
        f"candidate recall@{pool}: {result['candidate_recall']:.3f}; {result['timing_s']['total']:.1f} s; "
        f"written to {json_out}"
    )


def _places_trained_on(history: Any, models_dir: Path, features: Any) -> Any:
    """The places ranker trained on exactly this history, cached by its content. Not the store's
    served model: the demo trains that on all of checkins_train.csv, whose split=val rows are the
    dev trajectories, so it has seen the targets."""
    from core import columns as C
    from retrieval.rankers import LearnedRanker, newest_model
    from retrieval.train_cli_support import train_and_save

    folder = trained_on_folder(models_dir, "places", history)
    found = newest_model(folder)
    if found is not None:
        console.print(f"places ranker trained on this history: {found}")
        return LearnedRanker.load(found, features)
    # Pseudo-targets from the last 8 weeks, or the last half of a shorter history.
    weeks = max(1, min(8, (history[C.TIME].max() - history[C.TIME].min()).days // 14))
    console.print(
        f"training the places ranker on this history (pseudo-targets of {weeks} weeks, "
        "one model per setting, ~3-5 min)"
    )
    with progress("build training queries", 2 * 9000) as advance:  # one set per setting
        model, path = train_and_save(history, folder, features, weeks=weeks, progress=advance)
    console.print(f"saved {path}")
    return model


def _films_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    from evaluation.films import table_rows

    return table_rows(result)


def _print_table(rows: list[dict[str, object]], what: str = "places") -> None:
    """Like cli.common.echo_table, but wide enough for the method names when not on a terminal."""
    from rich.console import Console
    from rich.table import Table

    over = "all known POIs" if what == "places" else "the catalog's films not yet rated"
    table = Table(title=f"evaluation (rank = full rank over {over}; a miss is 0)")
    for col in rows[0]:
        table.add_column(str(col))
    for row in rows:
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()])
    Console(width=max(console.width, 120)).print(table)


def _print_llm(llm: dict[str, Any]) -> None:
    for name, b in llm["vs_ranker"].items():
        console.print(
            f"LLM blend (weight {llm['blend_weight']}) vs ranker alone, {name} ({b['n']} targets): MRR "
            f"{b['mrr_a']:.4f} vs {b['mrr_b']:.4f}, difference {b['diff']:+.4f} "
            f"(95% CI {b['lo']:+.4f} to {b['hi']:+.4f}; {b['targets_up']} up, {b['targets_down']} down)"
        )
    pb = llm.get("position_bias")
    if pb:
        console.print(
            f"position bias over {pb['orders']} orders: the LLM's top changes with the order for "
            f"{pb['top_changes']:.1%} of targets; its top is the candidate listed first "
            + ", ".join(f"{v:.1%}" for v in pb["top_is_listed_first"])
        )
        for name, m in pb["per_order"].items():
            console.print(
                f"  {name}: blend MRR {m['blend_mrr']:.4f}, LLM alone {m['llm_alone_mrr']:.4f}, "
                f"vs ranker {m['vs_ranker']['diff']:+.4f} ({m['vs_ranker']['lo']:+.4f} to "
                f"{m['vs_ranker']['hi']:+.4f})"
            )
        a = pb["averaged"]
        console.print(f"  averaged: blend MRR {a['blend_mrr']:.4f}, LLM alone {a['llm_alone_mrr']:.4f}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
