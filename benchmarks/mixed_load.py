"""A mixed load with nothing lost: recommendations, chat turns, event batches and feedback for
60 s at 16 connections on `chronotope serve --workers N`, then an audit of the store.

    CHRONOTOPE_DATA_DIR=<copy of a prepared store> .venv/bin/python benchmarks/mixed_load.py
        [--workers 2] [--connections 16] [--seconds 60]

The store gets the load's events, feedback and traces: use a copy (e.g. `cp -r .chronotope
/tmp/load-store`). Starts the server on a free 127.0.0.1 port with the LLM off (the chat answers by
rules and templates; the LLM under load is benchmarks/load_api.py's and docs/reliability.md's
business), drives it with evaluation.mixed_load and prints the requests, statuses, latency per
operation and the audit: acknowledged events, feedback and served recommendations missing from the
store (each must be 0), duplicated events, server errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal

from load_api import ADMIN, start_serve, wait_workers  # beside this script


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    from sqlalchemy import select

    from core.db import open_store
    from core.models import Item, User
    from core.settings import Settings
    from evaluation.mixed_load import audit, run_load

    settings = Settings()
    _, factory = open_store(settings)
    with factory() as s:
        users = list(s.scalars(select(User.id).order_by(User.id).limit(1000)))
        items = list(s.scalars(select(Item.id).order_by(Item.id).limit(5000)))
    if not users:
        raise SystemExit(f"no users in {settings.resolved_db_url}: prepare a store first")
    base, server = start_serve(a.workers, {})  # background re-mining on, as served by default
    try:
        wait_workers(base, server, a.workers)
        result = asyncio.run(
            run_load(base, ADMIN, users, items, seconds=a.seconds, connections=a.connections)
        )
        found = audit(factory, result)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    print(json.dumps({"load": result.summary(), "audit": found}, indent=2))


if __name__ == "__main__":
    main()
