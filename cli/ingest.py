"""``chronotope ingest PATH [--format foursquare|getnext|events]``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.common import console, err_console, handle_errors, progress, settings


@handle_errors
def ingest_cmd(
    path: Path = typer.Argument(..., help="CSV or JSON Lines file to ingest."),
    fmt: str | None = typer.Option(
        None, "--format", help="foursquare | getnext | events (guessed from the header if omitted)."
    ),
    report_json: Path | None = typer.Option(None, "--report", help="Also write the full report as JSON."),
    show: int = typer.Option(20, "--show-rejections", help="How many rejected rows to print."),
) -> None:
    """Ingest behaviour data; every rejected row is reported with its line number and reason."""
    from core.db import open_store
    from core.ingest import ingest_file

    s = settings()
    _, factory = open_store(s)
    total: list[int] = []

    with progress(f"ingest {path.name}", None) as advance:

        def on_parsed(n: int) -> None:
            total.append(n)
            if n > 50_000:
                err_console.print(f"parsed {n:,} valid rows; writing…")

        report = ingest_file(
            path, factory, fmt=fmt, zone=s.local_timezone, on_parsed=on_parsed, on_batch=lambda n: advance(n)
        )
    for r in report.rejections[:show]:
        err_console.print(f"line {r.line}: {r.reason}", highlight=False)
    if report.rejected > show:
        err_console.print(f"… and {report.rejected - show:,} more rejected rows (use --report FILE for all)")
    if report_json:
        report_json.write_text(json.dumps(report.to_dict(), indent=2))
    console.print(
        f"{report.format}: read {report.rows_read:,} rows, stored {report.inserted:,} new events "
        f"({report.already_present:,} already present, {report.duplicates_in_file:,} exact duplicates "
        f"dropped, {report.rejected:,} rows rejected), {report.users_added:,} new users, "
        f"{report.items_added:,} new items in {report.seconds:.1f} s",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_cmd)
