"""The store fails under a running server: a private PostgreSQL cluster (initdb/pg_ctl in a temp dir,
never the machine's shared one) stopped and restarted mid-load, and a data disk that fills up (a
small tmpfs as the data dir). Every request answers at once with 200 or 503 + Retry-After, never a
500 or a hang; nothing acknowledged is lost; served recommendations keep their traces (the writer
waits for the store); once the store is back everything answers 200 again."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from core.db import open_store
from core.models import Event, Recommendation
from core.settings import Settings
from jobs.mine import mine_users
from tests.integration.conftest import SERVE_ADMIN, _unavailable, free_port, served
from tests.retrieval.conftest import store_events, world

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {SERVE_ADMIN}"}
WHEN = "2012-05-20T16:00:00+00:00"
SLOWEST_S = 5.0  # no request may take longer than this while the store is down
RECOVERY_S = 3.0  # after the store is back, every request is served within this (pools reconnect)


@dataclass
class PrivatePG:
    url: str
    start: Any
    stop: Any


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return None


@pytest.fixture
def private_pg() -> Iterator[PrivatePG]:
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not initdb or not pg_ctl:
        _unavailable("PostgreSQL's initdb/pg_ctl are not installed")
    assert initdb and pg_ctl
    root = Path(tempfile.mkdtemp(prefix="chronotope-pg-"))
    root.chmod(0o755)
    as_pg: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_pg = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()
    subprocess.run(
        [*as_pg, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"

    def start() -> None:
        subprocess.run(
            [*as_pg, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o", opts, "start"],
            check=True,
            capture_output=True,
        )

    def stop() -> None:
        subprocess.run([*as_pg, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)

    start()
    try:
        yield PrivatePG(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", start, stop)
    finally:
        stop()
        shutil.rmtree(root, ignore_errors=True)


class Load:
    """Threads posting recommendations and event batches until stopped, recording every answer."""

    def __init__(self, base: str, users: list[str], items: list[str], threads: int = 4) -> None:
        self.base, self.users, self.items = base, users, items
        self.answers: list[dict[str, Any]] = []
        self.events: list[str] = []  # acknowledged event ids
        self.served: list[str] = []  # recommendation ids answered with 200
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._n = 0
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.base, headers=AUTH, timeout=30) as c:
            while not self._stop.is_set():
                with self._lock:
                    self._n += 1
                    n = self._n
                user = self.users[n % len(self.users)]
                if n % 3 == 0:
                    ids = [f"fault-{n}-{j}" for j in range(3)]
                    body = {
                        "events": [
                            {"event_id": e, "user_id": user, "item_id": self.items[(n + j) % len(self.items)],
                             "timestamp": f"2012-05-2{j}T1{j}:00:00+00:00"}
                            for j, e in enumerate(ids)
                        ]
                    }  # fmt: skip
                    op, path = "events", "/v1/events"
                else:
                    body = {"user_id": user, "k": 5, "use_llm": False, "context": {"time": WHEN}}
                    op, path = "recommend", "/v1/recommendations"
                t0 = time.monotonic()
                try:
                    r = c.post(path, json=body)
                    status, retry = r.status_code, r.headers.get("retry-after")
                    data = r.json()
                except httpx.HTTPError as exc:
                    status, retry, data = -1, None, {"transport": repr(exc)}
                took = time.monotonic() - t0
                with self._lock:
                    self.answers.append(
                        {"op": op, "status": status, "retry": retry, "took": took, "at": t0, "body": data}
                    )
                    if (
                        status == 200
                        and op == "events"
                        and data.get("inserted", 0) + data.get("already_present", 0) == 3
                    ):
                        self.events.extend(ids)
                    if status == 200 and op == "recommend":
                        self.served.append(data["recommendation_id"])
                time.sleep(0.02)


def _seed(settings: Settings) -> tuple[Any, list[str], list[str]]:
    _, factory = open_store(settings)
    ev, items = world(n_users=10, days=20)
    store_events(factory, ev)
    mine_users(factory, data_dir=settings.data_dir, workers=1)
    return factory, sorted(ev["user_id"].unique()), list(items["item_id"])


def _check_answers(load: Load) -> list[dict[str, Any]]:
    bad = [a for a in load.answers if a["status"] not in (200, 503)]
    assert not bad, bad[:3]  # never a 500, never a dropped connection
    unavailable = [a for a in load.answers if a["status"] == 503]
    assert all(a["retry"] and int(a["retry"]) >= 1 for a in unavailable)
    assert all(a["body"]["error"]["code"] in ("store_unavailable", "store_full") for a in unavailable)
    slowest = max(a["took"] for a in load.answers)
    assert slowest < SLOWEST_S, slowest
    return unavailable


def _nothing_lost(factory: Any, load: Load) -> None:
    with factory() as s:
        n = s.scalar(select(func.count()).select_from(Event).where(Event.id.in_(load.events)))
    assert n == len(set(load.events)) and load.events
    deadline = time.monotonic() + 30  # the trace writers retry until the store takes them
    missing = set(load.served)
    while missing and time.monotonic() < deadline:
        with factory() as s:
            have = set(s.scalars(select(Recommendation.id).where(Recommendation.id.in_(list(missing)))))
        missing -= have
        time.sleep(0.3)
    assert not missing, f"{len(missing)} served recommendation(s) without a trace"


def test_postgres_stopped_and_restarted_mid_load(private_pg: PrivatePG, tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path / "data", db_url=private_pg.url)
    factory, users, items = _seed(settings)
    env = {"CHRONOTOPE_DB_URL": private_pg.url}
    with served(settings.data_dir, tmp_path / "serve.log", workers=2, env=env) as (base, _):
        with Load(base, users, items) as load:
            time.sleep(2)
            down_at = time.monotonic()
            private_pg.stop()
            time.sleep(3)
            private_pg.start()
            up_at = time.monotonic()
            time.sleep(4)
        unavailable = _check_answers(load)
        assert unavailable, "the outage was not seen by any request"
        late = [(round(a["at"] - down_at, 2), round(a["took"], 2), a["op"]) for a in unavailable
                if not down_at - 0.5 <= a["at"] <= up_at + RECOVERY_S]  # fmt: skip
        assert not late, (round(up_at - down_at, 2), late[:5])
        after = [a for a in load.answers if a["at"] > up_at + RECOVERY_S]
        assert after and all(a["status"] == 200 for a in after)  # back to normal at once
    print(f"{len(load.answers)} requests, {len(unavailable)} answered 503 during the outage")
    _nothing_lost(factory, load)


def test_a_full_data_disk(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        _unavailable(f"cannot mount a tmpfs: {mounted.stderr.decode()[:200]}")
    try:
        settings = Settings(env="test", data_dir=disk / "data")
        factory, users, items = _seed(settings)
        with served(settings.data_dir, tmp_path / "serve.log", workers=1) as (base, _):
            with httpx.Client(base_url=base, headers=AUTH, timeout=30) as c:
                filler = disk / "filler"
                with open(filler, "wb") as fh:  # fill the disk to the last block
                    try:
                        while True:
                            fh.write(b"\0" * (1 << 20))
                            fh.flush()
                    except OSError:
                        pass
                batch = {"events": [{"event_id": "full-1", "user_id": users[0], "item_id": items[0],
                                     "timestamp": "2012-05-25T12:00:00+00:00"}]}  # fmt: skip
                r = c.post("/v1/events", json=batch)
                assert r.status_code == 503 and r.headers["retry-after"], r.text
                assert r.json()["error"]["code"] == "store_full"
                rec = c.post(
                    "/v1/recommendations", json={"user_id": users[1], "k": 3, "context": {"time": WHEN}}
                )
                assert rec.status_code == 200  # reads still serve; the trace waits for space
                fb = c.post(
                    f"/v1/recommendations/{rec.json()['recommendation_id']}/feedback",
                    json={"kind": "clicked", "item_id": rec.json()["items"][0]["item_id"]},
                )
                # its trace waits for space: "not stored yet", retry later (not a 404, not a 500)
                assert fb.status_code == 503 and fb.headers["retry-after"], fb.text
                assert fb.json()["error"]["code"] in ("store_full", "not_stored_yet")
                filler.unlink()  # space again: the same batch goes in, the trace is written
                again = c.post("/v1/events", json=batch)
                assert again.status_code == 200 and again.json()["inserted"] == 1, again.text
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    t = c.get(f"/v1/recommendations/{rec.json()['recommendation_id']}")
                    if t.status_code == 200:
                        break
                    time.sleep(0.3)
                assert t.status_code == 200 and t.json()["items"] == [
                    i["item_id"] for i in rec.json()["items"]
                ]
        with factory() as s:
            assert s.scalar(select(func.count()).select_from(Event).where(Event.id == "full-1")) == 1
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
