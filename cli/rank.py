"""``chronotope rank train``: train the learned ranker (LightGBM LambdaRank), versioned."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import console, handle_errors, progress, settings

rank_app = typer.Typer(help="Feature rankers.", no_args_is_help=True)


@rank_app.command("train")
@handle_errors
def train_cmd(
    history: Path | None = typer.Option(
        None, "--history", help="Check-in CSV to train on (default: the events in the store)."
    ),
    weeks: int = typer.Option(8, help="Pseudo-targets are the check-ins of the last WEEKS of the history."),
    queries: int = typer.Option(9000, help="At most this many training queries."),
    out: Path | None = typer.Option(None, help="Folder for the model (default: <data dir>/models)."),
) -> None:
    """Train on pseudo-targets cut from the end of the history; saves ranker-<version>.txt/.json."""
    from core.ingest import parse_file
    from retrieval.train_cli_support import train_and_save

    s = settings()
    if history is not None:
        df, _, _, _, _ = parse_file(history, None, s.local_timezone)
    else:
        from core.db import open_store
        from core.events_frame import events_frame

        _, factory = open_store(s)
        with factory() as sess:
            df = events_frame(sess)
    if df.empty:
        raise typer.BadParameter("no events to train on: ingest data first or pass --history")
    with progress("build training queries", queries) as advance:
        model, path = train_and_save(
            df, out or s.models_dir, weeks=weeks, max_queries=queries, progress=advance
        )
    console.print(
        f"saved {path} ({model.name}; {model.meta['train_queries']} queries, "
        f"best iteration {model.meta['best_iteration']})"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(rank_app, name="rank")
