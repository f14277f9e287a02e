"""``chronotope experiments check|assign|report``: the online experiments in CHRONOTOPE_EXPERIMENTS_FILE."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from cli.common import console, err_console, handle_errors, settings

experiments_app = typer.Typer(
    help="Online experiments (A/B): check the file, see a user's arm, report per-arm rates.",
    no_args_is_help=True,
)

FILE_HELP = "Experiments file (default: CHRONOTOPE_EXPERIMENTS_FILE)."


def _config(path: Path | None):  # type: ignore[no-untyped-def]
    from core.errors import InvalidInputError
    from core.experiments import load_experiments

    path = path or settings().experiments_file
    if path is None:
        raise InvalidInputError("no experiments file: pass --file or set CHRONOTOPE_EXPERIMENTS_FILE")
    return load_experiments(path)


@experiments_app.command("check")
@handle_errors
def check_cmd(file: Path | None = typer.Option(None, "--file", help=FILE_HELP)) -> None:
    """Validate the file as the server does at start; print each experiment's arms."""
    cfg = _config(file)
    for e in cfg.experiments:
        arms = ", ".join(f"{a.name} {a.weight:g} {a.settings.changes() or '(defaults)'}" for a in e.arms)
        console.print(f"{e.name}: {e.traffic:g} of users; arms: {arms}", highlight=False)
    err_console.print(f"{len(cfg.experiments)} experiment(s) OK")


@experiments_app.command("assign")
@handle_errors
def assign_cmd(
    users: list[str] = typer.Argument(..., help="User ids."),
    file: Path | None = typer.Option(None, "--file", help=FILE_HELP),
) -> None:
    """Which experiment and arm each user is served by."""
    cfg = _config(file)
    for u in users:
        a = cfg.assign(u)
        console.print(f"{u}\t{a.experiment + '/' + a.arm if a else '-'}", highlight=False)


@experiments_app.command("report")
@handle_errors
def report_cmd(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="One experiment (default: all)."),
    since: datetime | None = typer.Option(None, "--since", help="Only recommendations served since (UTC)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
    file: Path | None = typer.Option(None, "--file", help=FILE_HELP),
) -> None:
    """Per-arm click, accept and reject rates with 95% intervals, and each arm against the first."""
    from agent.experiment_report import experiment_report, render
    from core.db import open_store

    cfg = _config(file)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    _, factory = open_store(settings())
    with factory() as s:
        report = experiment_report(s, cfg, experiment, since)
    console.print(
        json.dumps(report, indent=2) if as_json else render(report), highlight=False, soft_wrap=True
    )


def register(app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")
