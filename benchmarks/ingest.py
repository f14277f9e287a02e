"""Ingest throughput: the NYC check-in file into a fresh SQLite file and a fresh PostgreSQL schema.

    .venv/bin/python benchmarks/ingest.py [--file PATH] [--pg-url URL] [--no-pg]

Prints rows/s for each store, and the time of a second (idempotent, nothing to write) run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from core.db import make_engine, make_sessionmaker, upgrade
from core.ingest import ingest_file

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared/datasets/foursquare_nyc/checkins_train.csv"


def run(url: str, path: Path, connect_args: dict | None = None) -> None:
    engine = make_engine(url, **({"connect_args": connect_args} if connect_args else {}))
    upgrade(engine)
    factory = make_sessionmaker(engine)
    t0 = time.perf_counter()
    rep = ingest_file(path, factory)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep2 = ingest_file(path, factory)
    second = time.perf_counter() - t0
    name = engine.dialect.name
    print(
        f"{name:10s} rows={rep.rows_read:,} stored={rep.inserted:,} first run {first:.1f} s "
        f"({rep.rows_read / first:,.0f} rows/s); re-run {second:.1f} s, stored {rep2.inserted}"
    )
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        run(f"sqlite:///{d}/bench.db", args.file)
    if not args.no_pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.pg_url)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            run(args.pg_url, args.file, {"options": f"-csearch_path={schema}"})
        finally:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
