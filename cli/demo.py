"""``chronotope demo [--dataset places|movielens]``: the README's main command on a fresh machine.

Ingests a data set (the NYC check-ins by default, or the MovieLens films), mines profiles, trains
the ranker, builds the index, starts the local LLM (or says why not and goes on with the feature
ranker), then serves the API and prints the URL and keys. Steps already done are skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import typer

from cli.common import console, err_console, handle_errors, progress, settings

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# data set -> (what to ingest, its format, the user whose key is printed)
DEMO_DATA = {
    "places": (DATASETS / "foursquare_nyc" / "checkins_train.csv", None, "470"),
    "movielens": (DATASETS / "movielens_small", "movielens", "414"),
}


def _step(title: str) -> None:
    err_console.print(f"[bold cyan]==>[/] {title}", highlight=False)


@handle_errors
def demo_cmd(
    dataset: str = typer.Option("places", "--dataset", help="places (NYC check-ins) or movielens (films)."),
    data: Path | None = typer.Option(None, "--data", help="What to ingest instead of the data set's file."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    no_llm: bool = typer.Option(False, "--no-llm", help="Skip the local LLM (feature ranker only)."),
    no_serve: bool = typer.Option(
        False, "--no-serve", help="Prepare everything, then exit (for scripts/CI)."
    ),
) -> None:
    """Ingest, mine, train, index, start the LLM and the API; prints the URL and keys."""
    from sqlalchemy import func, select

    from api.auth import create_key
    from core.db import open_store
    from core.events_frame import events_frame
    from core.ingest import ingest_file
    from core.models import Event, Profile
    from domains import formats, resolve
    from jobs.mine import mine_users
    from retrieval.rankers import newest_model
    from retrieval.serving_state import behaviour

    if dataset not in DEMO_DATA:
        raise typer.BadParameter(f"unknown data set {dataset!r}: places or movielens")
    default_data, fmt, demo_user = DEMO_DATA[dataset]
    data = data or default_data
    s = settings()
    t0 = time.perf_counter()
    _, factory = open_store(s)
    with factory() as sess:
        n_events = sess.scalar(select(func.count()).select_from(Event)) or 0
    if n_events == 0:
        _step(f"ingest {data}")
        if not data.exists():
            raise typer.BadParameter(f"{data} not found; pass --data PATH")
        rep = ingest_file(data, factory, formats=formats(), fmt=fmt, zone=s.local_timezone)
        err_console.print(
            f"stored {rep.inserted:,} events, {rep.users_added:,} users, {rep.items_added:,} items"
        )
    else:
        _step(f"ingest: skipped ({n_events:,} events already stored)")
    with factory() as sess:
        domain = resolve(s.domain, sess)
    wanted = "films" if dataset == "movielens" else "places"
    if data == default_data and domain.name != wanted:
        raise typer.BadParameter(
            f"{s.data_dir} already holds a {domain.name} catalog, not the {dataset} data set; give this "
            f"one its own data dir, e.g. CHRONOTOPE_DATA_DIR=.chronotope-{dataset} "
            f"scripts/demo.sh --dataset {dataset}"
        )
    _step(f"catalog: {domain.name}")
    with factory() as sess:
        n_prof = sess.scalar(select(func.count(func.distinct(Profile.user_id)))) or 0
    _step(
        "mine profiles"
        if n_prof == 0
        else "mine profiles (only users whose events changed get a new version)"
    )
    with factory() as sess:
        from core.models import User

        n_users = sess.scalar(select(func.count()).select_from(User)) or 0
    with progress("mine", n_users) as advance:
        out = mine_users(factory, data_dir=s.data_dir, progress=advance, domain=domain.name)
    err_console.print(f"{out['mined']:,} users mined, {out['new_versions']:,} new profile versions")
    if newest_model(s.models_dir) is None:
        _step("train the ranker (LightGBM LambdaRank on pseudo-targets from the history)")
        with factory() as sess:
            df = behaviour(events_frame(sess))
        with progress("training queries", domain.training_size(df, 9000)) as advance:
            model, path = domain.train_ranker(df, s.models_dir, progress=advance)
        err_console.print(f"saved {path.name}")
    else:
        _step(f"ranker: using {newest_model(s.models_dir).name}")  # type: ignore[union-attr]
    _step("index the catalog")
    from cli.index import index_cmd

    index_cmd(kind="", rebuild=False, batch_size=128)
    llm: dict[str, Any] = {}  # the embedded server's handle, once started
    llm_thread = None
    if no_llm:
        _step("LLM: skipped (--no-llm); the feature ranker serves")
    elif not s.llm_is_embedded:
        _step(f"LLM: using the external server {s.resolved_llm_base_url}")
    elif no_serve:
        _step("LLM: provision and start the embedded vLLM server")
        _start_embedded_llm(s, llm)
    else:
        # The API answers now, with the feature ranker; the LLM joins when its server is healthy
        # (the first install takes minutes), as every request checks it through its breaker.
        _step("LLM: provisioning and starting the embedded vLLM server in the background")
        llm_thread = threading.Thread(
            target=_start_embedded_llm, args=(s, llm, True), name="llm-start", daemon=True
        )
        llm_thread.start()
    with factory() as sess:
        admin = create_key(sess, "admin")
        support = create_key(sess, "support")
        user_key = create_key(sess, "user", demo_user)
        sess.commit()
    url = f"http://{host}:{port}/"
    console.print(
        f"\nChronotope is ready after {time.perf_counter() - t0:.0f} s.\n"
        f"  web page:  {url}\n  API docs:  {url}docs  (OpenAPI at {url}openapi.json)\n"
        f"  admin key:   {admin}\n  support key: {support}\n  user key (user {demo_user}): {user_key}\n",
        highlight=False,
    )
    if no_serve:
        if llm.get("handle"):
            llm["handle"].stop()
        return
    if llm_thread is not None:
        console.print(
            "The feature ranker serves until the LLM is up; its progress is on stderr and "
            "`/readyz` (`llm.reachable`) says when it is.\n",
            highlight=False,
        )
    try:
        import uvicorn

        from api.app import configure_logging
        from cli.serving import create_served_app

        configure_logging(logging.WARNING)
        uvicorn.run(create_served_app(s), host=host, port=port, log_level="warning")
    finally:
        if llm.get("supervisor"):
            llm["supervisor"].stop()
        if llm.get("handle"):
            llm["handle"].stop()


def _start_embedded_llm(s: Any, out: dict[str, Any], supervise: bool = False) -> None:
    """Install the runtime and model if needed and start the server; on failure say why and leave
    the feature ranker serving."""
    try:
        from agent.llm.provision import provision
        from agent.llm.runtime import setup
        from agent.llm.server import healthy, start_server

        if healthy(s.resolved_llm_base_url):
            err_console.print(f"an LLM server already answers at {s.resolved_llm_base_url}")
            return
        py = setup(s, lambda m: err_console.print(m, highlight=False))
        provision(s, py, lambda m: err_console.print(m, highlight=False))
        say = lambda m: err_console.print(m, highlight=False)  # noqa: E731
        first = start_server(s, say=say)
        out["handle"] = first
        err_console.print(f"the LLM serves at {s.resolved_llm_base_url}")
        if supervise:  # serving: a server that dies is started again (after a backoff, logged)
            from agent.llm.supervisor import Supervisor

            handles = iter([first])
            sup = Supervisor(lambda: next(handles, None) or start_server(s, say=say), say=say)
            out["supervisor"] = sup
            sup.run_in_background()
    except Exception as exc:  # the demo goes on without the LLM, and says why
        err_console.print(f"[yellow]LLM not started: {exc}[/]; continuing with the feature ranker")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
