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


HEADER = "user_id,stan_poi_id,POI_id,POI_catid,POI_catname,latitude,longitude,UTC_time_minute,split\n"


def test_an_ingest_that_stores_nothing_fails_and_says_why(data_dir: Path, tmp_path: Path) -> None:
    """No silent success: every row rejected, or no row at all, exits 1 with the reasons; a
    re-ingest of rows already stored is a success that says so."""
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER + "1,10,,,,40.7,-74.0,2012-04-03T18:00:00Z,train\n1,11,,,,40.7,-74.0,03/04/2012,train\n"
    )
    out = runner.invoke(app, ["ingest", str(bad)])
    assert out.exit_code == 1, out.output
    assert "nothing was stored" in out.output and "all 2 rows were rejected" in out.output
    assert "line 2: unparseable time: 2012-04-03T18:00:00Z" in out.output
    header_only = tmp_path / "header.csv"
    header_only.write_text(HEADER)
    out = runner.invoke(app, ["ingest", str(header_only)])
    assert out.exit_code == 1 and "has no rows" in out.output, out.output
    good = tmp_path / "good.csv"
    good.write_text(
        HEADER + "1,10,,,,40.7,-74.0,2012-04-03 18:00,train\n1,11,,,,40.7,-74.0,03/04/2012,train\n"
    )
    assert runner.invoke(app, ["ingest", str(good)]).exit_code == 0
    again = runner.invoke(app, ["ingest", str(good)])
    assert again.exit_code == 0, again.output
    assert "nothing new: all 1 valid rows were already stored" in again.output
    # the demo's ingest step refuses the same file (before mining, training or serving anything)
    demo = runner.invoke(
        app,
        ["demo", "--data", str(bad), "--no-llm", "--no-serve"],
        env={"CHRONOTOPE_DATA_DIR": str(tmp_path / "d")},
    )
    assert demo.exit_code == 1 and "all 2 rows were rejected" in demo.output, demo.output


def test_a_zone_the_coordinates_contradict_is_a_loud_warning(data_dir: Path, tmp_path: Path) -> None:
    tokyo = tmp_path / "tokyo.csv"
    tokyo.write_text(
        HEADER + "1,10,,,,35.68,139.76,2012-04-03 18:00,train\n2,11,,,,35.69,139.70,2012-04-03 19:00,train\n"
    )
    out = runner.invoke(app, ["ingest", str(tokyo)])
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())  # rich wraps long lines
    assert "warning: the time zone America/New_York (UTC-04:00 at these times)" in said
    assert "suggest about UTC+09:00" in said and "--zone" in said
    fresh = {"CHRONOTOPE_DATA_DIR": str(tmp_path / "tokyo-store")}
    right = runner.invoke(app, ["ingest", str(tokyo), "--zone", "Asia/Tokyo"], env=fresh)
    assert right.exit_code == 0 and "warning" not in right.output, right.output
    wrong = runner.invoke(app, ["ingest", str(tokyo), "--zone", "Mars/Olympus"], env=fresh)
    assert wrong.exit_code == 1 and "not an IANA time zone" in wrong.output
