"""The console script's contract: subcommands listed, errors on stderr with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def test_help_lists_the_contract_subcommands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("ingest", "db", "mine", "index", "eval", "llm", "keys", "serve", "demo"):
        assert name in result.output


def test_ingest_and_reingest(data_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text(
        "user_id,stan_poi_id,POI_id,POI_catid,POI_catname,latitude,longitude,UTC_time_minute,split\n"
        "1,10,,,,40.7,-74.0,2012-04-03 18:00,train\n"
        "1,11,,,,400,-74.0,2012-04-03 18:00,train\n"
    )
    first = runner.invoke(app, ["ingest", str(f), "--report", str(tmp_path / "r.json")])
    assert first.exit_code == 0, first.output
    assert "stored 1 new events" in first.output
    assert "line 3: impossible coordinates" in first.output
    again = runner.invoke(app, ["ingest", str(f)])
    assert "stored 0 new events (1 already present" in again.output
    assert (data_dir / "chronotope.db").exists()


def test_errors_go_to_stderr_with_nonzero_exit(data_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "ingest", str(empty)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "empty" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "cli.main", "ingest", str(tmp_path / "nope.csv"), "--format", "getnext"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_db_upgrade(data_dir: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "schema at" in result.output


def test_long_steps_print_progress_lines_into_a_log(data_dir: Path, tmp_path: Path) -> None:
    """Not a terminal (a log file, CI): plain progress lines, start and end at least."""
    f = tmp_path / "c.csv"
    rows = [
        f"{u},{10 + i % 3},,,,40.7,-74.0,2012-04-{3 + i // 8:02d} {8 + i % 8:02d}:00,train"
        for u in (1, 2)
        for i in range(40)
    ]
    f.write_text(
        "user_id,stan_poi_id,POI_id,POI_catid,POI_catname,latitude,longitude,UTC_time_minute,split\n"
        + "\n".join(rows)
        + "\n"
    )
    assert runner.invoke(app, ["ingest", str(f)]).exit_code == 0
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "mine", "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mine profiles (local): ")]
    assert lines[0].startswith("mine profiles (local): 0/2 (0%)") and "2/2 (100%)" in lines[-1]
