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
    zone: str | None = typer.Option(
        None,
        "--zone",
        help="IANA time zone of a file whose times are UTC only (foursquare), e.g. Asia/Tokyo; "
        "default CHRONOTOPE_LOCAL_TIMEZONE, else the format's own.",
    ),
) -> None:
    """Ingest behaviour data; every rejected row is reported with its line number and reason. An
    ingest that stores no event because the input has no row or every row was rejected exits with
    an error saying why; re-ingesting rows already stored is a success that says so."""
    from core.db import open_store
    from core.errors import InvalidInputError
    from core.ingest import ingest_file
    from domains import formats

    s = settings()
    if zone is not None:
        _check_zone(zone)
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
            zone=zone or s.local_timezone,
            on_parsed=on_parsed,
            on_batch=lambda n: advance(n),
        )
    for r in report.rejections[:show]:
        err_console.print(f"line {r.line}: {r.reason}", highlight=False)
    if report.rejected > show:
        err_console.print(f"… and {report.rejected - show:,} more rejected rows (use --report FILE for all)")
    for w in report.warnings:
        err_console.print(f"[bold yellow]warning:[/] {w}", highlight=False)
    if report_json:
        report_json.write_text(json.dumps(report.to_dict(), indent=2))
    console.print(
        f"{report.format}: read {report.rows_read:,} rows, stored {report.inserted:,} new events "
        f"({report.already_present:,} already present, {report.duplicates_in_file:,} exact duplicates "
        f"dropped, {report.rejected:,} rows rejected), {report.users_added:,} new users, "
        f"{report.items_added:,} new items in {report.seconds:.1f} s",
        highlight=False,
    )
    why = report.nothing_stored()
    if why:
        raise InvalidInputError(f"nothing was stored from {path}: {why}")
    if report.already_stored():
        console.print(
            f"nothing new: all {report.already_present:,} valid rows were already stored", highlight=False
        )


def _check_zone(zone: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from core.errors import InvalidInputError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError(f"--zone {zone!r} is not an IANA time zone (e.g. Europe/Paris)") from exc


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_cmd)
