"""Mining and batch recommendations at scale: the local engine against Ray, 1 and 2 workers.

    CHRONOTOPE_DB_URL=postgresql+psycopg://postgres@127.0.0.1:5432/scale \\
        .venv/bin/python benchmarks/scale.py [--users 2000] [--events-per-user 100] [--items 20000]
        [--batch-users 300] [--llm]

Generates a slice of the synthetic population (benchmarks/synthetic_catalog.py: clustered places,
hour and weekday rhythms; the full population is --users 100000 --events-per-user 100) into the
store named by CHRONOTOPE_DB_URL (PostgreSQL: Ray tasks write it concurrently) unless it already
holds those users, then runs `chronotope mine --restart` with each engine and worker count in its
own process, deleting the profiles before each run, and prints users/s, events/s and the peak
resident memory of each worker process (sampled every 0.2 s). Then `chronotope recommend-batch`
for --batch-users users, local and Ray, without the LLM (and with it with --llm, if a server is up).
Uses a data dir under /tmp unless CHRONOTOPE_DATA_DIR is set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from cli.main import main; main()"]


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, dict[int, float], str]:
    """Run a CLI command; returns seconds, peak RSS (MB) per process that ran under it, output."""
    peaks: dict[int, float] = {}
    proc = subprocess.Popen(
        [*CLI, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    done = threading.Event()

    def sample() -> None:
        me = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [me, *me.children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    rss = p.memory_info().rss / 2**20
                    peaks[p.pid] = max(peaks.get(p.pid, 0.0), rss)
                except psutil.Error:
                    pass
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    t.start()
    out, _ = proc.communicate()
    dt = time.perf_counter() - t0
    done.set()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.decode()[-2000:]}")
    return dt, {pid: peaks[pid] for pid in peaks if peaks[pid] > 50}, out.decode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--events-per-user", type=int, default=100)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--batch-users", type=int, default=300)
    ap.add_argument("--llm", action="store_true", help="Also time recommend-batch --llm (needs a server).")
    a = ap.parse_args()
    url = os.environ.get("CHRONOTOPE_DB_URL", "")
    if not url.startswith("postgresql"):
        raise SystemExit("set CHRONOTOPE_DB_URL to a PostgreSQL database (Ray tasks write it concurrently)")
    env = dict(os.environ)
    env.setdefault("CHRONOTOPE_DATA_DIR", tempfile.mkdtemp(prefix="chronotope-scale-"))
    env["CHRONOTOPE_RETRIEVAL__EMBEDDING_SOURCE"] = "false"

    from core.db import open_store
    from core.models import Event, Profile, User
    from core.settings import Settings

    os.environ.update(env)
    _, factory = open_store(Settings())
    with factory() as s:
        n_users = int(s.scalar(select(func.count()).select_from(User)) or 0)
    if n_users < a.users:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "population.jsonl"
            subprocess.run(
                [sys.executable, str(ROOT / "benchmarks/synthetic_catalog.py"), "--users", str(a.users),
                 "--events-per-user", str(a.events_per_user), "--items", str(a.items), "--out", str(path)],
                check=True,
            )  # fmt: skip
            dt, _, _ = run_measured(["ingest", str(path), "--format", "events"], env)
            print(f"ingest: {dt:.0f} s")
    with factory() as s:
        n_users = int(s.scalar(select(func.count()).select_from(User)) or 0)
        n_events = int(s.scalar(select(func.count()).select_from(Event)) or 0)
    print(f"store: {n_users:,} users, {n_events:,} events ({url.split('@')[-1]})")
    for engine, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
        with factory() as s:
            s.execute(text("DELETE FROM profiles"))
            s.commit()
        dt, peaks, _ = run_measured(["mine", "--engine", engine, "--workers", str(workers), "--restart"], env)
        with factory() as s:
            stored = int(s.scalar(select(func.count()).select_from(Profile)) or 0)
        big = sorted(peaks.values(), reverse=True)
        print(
            f"mine --engine {engine} --workers {workers}: {dt:.1f} s, {n_users / dt:.1f} users/s, "
            f"{n_events / dt:,.0f} events/s, {stored:,} profiles; peak RSS of the processes over 50 MB "
            f"(driver and workers, MB): {', '.join(f'{m:.0f}' for m in big[:6])}"
        )
    users_file = Path(env["CHRONOTOPE_DATA_DIR"]) / "batch-users.txt"
    with factory() as s:
        ids = [u for (u,) in s.execute(select(User.id).order_by(User.id).limit(a.batch_users))]
    users_file.write_text("\n".join(ids) + "\n")
    runs = [("local", []), ("ray", ["--workers", "1"]), ("ray", ["--workers", "2"])]
    for llm in (False, True) if a.llm else (False,):
        for engine, extra in runs:
            out = Path(env["CHRONOTOPE_DATA_DIR"]) / f"batch-{engine}-{'-'.join(extra)}-{llm}.jsonl"
            out.unlink(missing_ok=True)
            args = ["recommend-batch", "--users", str(users_file), "--out", str(out), "--engine", engine,
                    "--at", "2024-06-03T18:00:00+00:00", *extra, *(["--llm"] if llm else [])]  # fmt: skip
            dt, peaks, _ = run_measured(args, env)
            big = sorted(peaks.values(), reverse=True)
            print(
                f"recommend-batch --engine {engine} {' '.join(extra)}{' --llm' if llm else ''}: "
                f"{len(ids)} users in {dt:.1f} s = {len(ids) / dt:.1f} users/s including start-up; "
                f"peak RSS (MB): {', '.join(f'{m:.0f}' for m in big[:6])}"
            )


if __name__ == "__main__":
    main()
