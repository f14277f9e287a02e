"""``chronotope ingest PATH [--format foursquare|getnext|events|movielens]``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.common import console, err_console, handle_errors, progress, settings


@handle_errors
def ingest_cmd(
    path: Path = typer.Argument(
        ..., help="CSV or JSON Lines file to ingest (a folder for --format movielens)."
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        help="foursquare | getnext | events | movielens (a file's is guessed from its header if omitted).",
    ),
    report_json: Path | None = typer.Option(None, "--report", help="Also write the full report as JSON."),
    show: int = typer.Option(20, "--show-rejections", help="How many rejected rows to print."),
) -> None:
    """Ingest behaviour data; every rejected row is reported with its line number and reason. An
    ingest that stores nothing new, or finds no usable row, exits with an error saying why."""
    from core.db import open_store
    from core.errors import InvalidInputError
    from core.ingest import ingest_file
    from domains import formats

    s = settings()
    _, factory = open_store(s)

    with progress(f"ingest {path.name}", None) as advance:

        def on_parsed(n: int) -> None:
            if n > 50_000:
                err_console.print(f"parsed {n:,} valid rows; writing…")

        report = ingest_file(
            path,
            factory,
            formats=formats(),
            fmt=fmt,
            zone=s.local_timezone,
            on_parsed=on_parsed,
            on_batch=lambda n: advance(n),
        )
    for r in report.rejections[:show]:
        err_console.print(f"line {r.line}: {r.reason}", highlight=False)
    if report.rejected > show:
        err_console.print(f"… and {report.rejected - show:,} more rejected rows (use --report FILE for all)")
    for w in report.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if report_json:
        report_json.write_text(json.dumps(report.to_dict(), indent=2))
    console.print(
        f"{report.format}: read {report.rows_read:,} rows, stored {report.inserted:,} new events "
        f"({report.already_present:,} already present, {report.duplicates_in_file:,} exact duplicates "
        f"dropped, {report.rejected:,} rows rejected), {report.users_added:,} new users, "
        f"{report.items_added:,} new items in {report.seconds:.1f} s",
        highlight=False,
    )
    if report.rows_valid == 0:
        first = (
            f" (first: line {report.rejections[0].line}, {report.rejections[0].reason})"
            if report.rejections
            else ""
        )
        raise InvalidInputError(f"no usable row in {path}: all {report.rows_read:,} rejected{first}")
    if report.inserted == 0 and report.items_added == 0 and report.already_present == 0:
        raise InvalidInputError(f"nothing was stored from {path}")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_cmd)
