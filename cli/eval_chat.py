"""``chronotope eval-chat``: a scripted user talks to the chat agent over the dev split
(evaluation/chat_eval.py says what is measured)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import typer

from cli.common import console, dev_world, handle_errors, progress, settings


@handle_errors
def eval_chat_cmd(
    history: Path | None = typer.Option(None, "--history", help="History CSV (checkins_train.csv format)."),
    test: Path | None = typer.Option(None, "--test", help="Test CSV (GETNext format, NYC_val.csv)."),
    fmt: str = typer.Option(
        "places",
        "--format",
        help="places (the NYC dev split) or movielens (the films store of the data dir).",
    ),
    json_out: Path = typer.Option(..., "--json", help="Write the figures (and every turn) here."),
    sample: int = typer.Option(60, "--sample", help="Dev targets to converse about."),
    requests: str = typer.Option(
        "all", "--requests", help="Open requests of the bank to run: dev, holdout, all or none."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the targets, wishes and scripts."),
    ranker: str = typer.Option("learned", "--ranker", help="learned | heuristic | a model file."),
    bank_path: Path | None = typer.Option(None, "--bank", help="Wish bank YAML (default: the packaged one)."),
    work_dir: Path | None = typer.Option(
        None, "--work-dir", help="Scratch store (default: <data dir>/eval-chat; rebuilt each run)."
    ),
    conversations: bool = typer.Option(
        False,
        "--conversations",
        help="Run the scripted conversations (evaluation/chat_conversations.yaml: actions, feedback, "
        "full lists, claims) instead of the targets and open requests.",
    ),
) -> None:
    """Converse about sampled dev targets and the bank's open requests; print and save figures."""
    from core.errors import InvalidInputError
    from evaluation.chat_bank import load_bank
    from evaluation.chat_eval import run_requests, run_targets, summarize
    from evaluation.dev_split import load_split

    if fmt == "movielens":
        from cli.eval_films_llm import films_chat

        films_chat(json_out, requests, seed)
        return
    if fmt != "places":
        raise InvalidInputError(f"--format {fmt!r}: places or movielens")
    if history is None or test is None:
        raise InvalidInputError("places needs --history and --test")
    s = settings()
    for p in (history, test):
        if not p.exists():
            raise InvalidInputError(f"{p}: no such file")
    if requests not in ("dev", "holdout", "all", "none"):
        raise InvalidInputError("--requests must be dev, holdout, all or none")
    if sample < 0:
        raise InvalidInputError("--sample must be zero or more")
    bank = load_bank(bank_path)
    split = load_split(history, test, s.local_timezone)
    wd = work_dir or (s.data_dir / "eval-chat")
    world = dev_world(s, split, wd, ranker)
    problems = bank.problems({c for c in world.categories.values() if isinstance(c, str)})
    if problems:
        raise InvalidInputError(
            "the wish bank names categories this catalog lacks: " + "; ".join(problems[:5])
        )
    rng = random.Random(seed)
    if conversations:
        _conversations(world, split, json_out, rng, s, seed)
        return
    queries = [q for q in split.queries if world.categories.get(q.target_item) in bank.categories]
    picked = rng.sample(queries, min(sample, len(queries)))
    t0 = time.perf_counter()
    with progress("conversations about dev targets", len(picked)) as advance:
        rows, turns = run_targets(world, split, bank, picked, rng, s.chat.k, advance)
    reqs = []
    if requests != "none":
        n_req = sum(1 for r in bank.requests if requests == "all" or r.split == requests)
        with progress("open requests", n_req) as advance:
            reqs = run_requests(world, split, bank, picked or queries, requests, rng, advance)
    summary = summarize(rows, turns, reqs, s.chat.k)
    summary.update(
        model=s.llm.model_name if s.llm.enabled and s.chat.llm else None,
        ranker=world.retriever.recommender.ranker.name,
        seed=seed,
        seconds=round(time.perf_counter() - t0, 1),
    )
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(
        json.dumps(
            {**summary, "targets": rows, "turns": [t.__dict__ for t in turns + reqs]}, indent=2, default=str
        )
    )
    console.print_json(json.dumps(summary, default=str))
    console.print(f"written to {json_out}")


def _conversations(world: Any, split: Any, json_out: Path, rng: random.Random, s: Any, seed: int) -> None:
    from evaluation.chat_conversations import load_conversations, run_conversations, summarize_conversations

    convs = load_conversations()
    t0 = time.perf_counter()
    with progress("scripted conversations", len(convs)) as advance:
        turns = run_conversations(world, split, convs, split.queries, rng, s.chat.k, advance)
    summary = summarize_conversations(turns)
    llm_on = s.llm.enabled and s.chat.llm
    summary.update(
        model=s.llm.model_name if llm_on else None, seed=seed, seconds=round(time.perf_counter() - t0, 1)
    )
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps({**summary, "turns": [t.__dict__ for t in turns]}, indent=2, default=str))
    console.print_json(json.dumps(summary, default=str))
    console.print(f"written to {json_out}")


def register(app: typer.Typer) -> None:
    app.command("eval-chat")(eval_chat_cmd)
