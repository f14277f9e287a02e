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
