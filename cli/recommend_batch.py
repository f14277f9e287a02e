"""``chronotope recommend-batch``: recommendations for many users, stored with their traces."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from cli.common import console, handle_errors, progress, settings


@handle_errors
def recommend_batch_cmd(
    users: str = typer.Option("all", "--users", help="'all' (every user in the store) or a file of ids."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="JSONL output, one line per user (default: DATA_DIR/batch/recommendations.jsonl); "
        "a re-run with the same file skips the users already in it.",
    ),
    k: int = typer.Option(10, "--k", min=1, max=100, help="Recommendations per user."),
    at: str | None = typer.Option(None, "--at", help="The time they are for (ISO, with zone; default now)."),
    llm: bool = typer.Option(False, "--llm", help="LLM rerank and explanations (else ranker + templates)."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray."),
    address: str | None = typer.Option(None, "--address", help="Ray: join this cluster (default: local)."),
    workers: int = typer.Option(0, "--workers", help="Ray: actors, each with a serving state (0: cores-1)."),
    concurrency: int = typer.Option(0, "--concurrency", help="Users in flight per service (0: 4 / 1)."),
) -> None:
    """Recommend k items to every user (or a list), with the API's pipeline; stores every trace."""
    from core.db import open_store
    from core.errors import InvalidInputError
    from jobs.recommend_batch import recommend_batch, target_users

    if address and engine != "ray":
        raise InvalidInputError("--address is for --engine ray")
    try:
        when = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError as exc:
        raise InvalidInputError(f"--at {at!r} is not an ISO time (e.g. 2012-11-12T18:00:00+00:00)") from exc
    if when.tzinfo is None:
        raise InvalidInputError("--at needs a time zone (e.g. 2012-11-12T18:00:00+00:00)")
    s = settings()
    _, factory = open_store(s)
    targets = target_users(factory, users)
    path = out or s.data_dir / "batch" / "recommendations.jsonl"
    with progress(f"recommend ({engine}{', llm' if llm else ''})", len(targets)) as advance:
        summary = recommend_batch(
            s, factory, targets, path, when, k=k, use_llm=llm, engine=engine, address=address,
            workers=workers or None, concurrency=concurrency or None, progress=advance,
        )  # fmt: skip
    console.print_json(json.dumps(summary.to_dict()))
    for u, why in sorted(summary.failed.items())[:20]:
        console.print(f"[red]user {u} failed[/]: {why}", highlight=False)
    if summary.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("recommend-batch")(recommend_batch_cmd)
