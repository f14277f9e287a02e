"""``chronotope demo [--dataset places|movielens]``: the README's main command on a fresh machine.

Ingests a data set (the NYC check-ins by default, or the MovieLens films), mines profiles, trains
the ranker, builds the index, then serves the API and prints the URL and keys. Steps already done
are skipped. The local LLM (runtime install, model download and conversion, server start, warm-up)
is prepared in a background thread from the first second, beside those steps; the API serves with
the feature ranker and templates until it joins, and the demo prints when it does (or why not).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import typer

from cli.common import console, err_console, fit_lines, handle_errors, progress, settings

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# data set -> (what to ingest, its format, the user whose key is printed)
DEMO_DATA = {
    "places": (DATASETS / "foursquare_nyc" / "checkins_train.csv", None, "470"),
    "movielens": (DATASETS / "movielens_small", "movielens", "414"),
}


_T0 = [time.perf_counter()]  # when the demo began: every step says how long after


def _step(title: str) -> None:
    err_console.print(f"[bold cyan]==>[/] [{time.perf_counter() - _T0[0]:4.0f} s] {title}", highlight=False)


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
    if dataset not in DEMO_DATA:
        raise typer.BadParameter(f"unknown data set {dataset!r}: places or movielens")
    data = data or DEMO_DATA[dataset][0]
    s = settings()
    _T0[0] = time.perf_counter()
    # the embedded server's handle and supervisor, once started; "cancel" stops a start under way
    # "prepared": the demo's own steps are done (the server then runs at normal priority)
    llm: dict[str, Any] = {
        "cancel": threading.Event(),
        "prepared": threading.Event(),
        "lock": threading.Lock(),
    }
    llm_thread = None
    if no_llm:
        _step("LLM: skipped (--no-llm); the feature ranker serves")
    elif not s.llm_is_embedded:
        _step(f"LLM: using the external server {s.resolved_llm_base_url}")
    else:
        # The install and the model's download and conversion are mostly waiting on the network
        # and the disk: they run beside ingest, mining and training from the start (docs/
        # measurements.md has the timings on two cores), and the server starts when they are done.
        _step("LLM: installing, provisioning and starting the embedded vLLM server in the background")
        llm_thread = threading.Thread(
            target=_start_embedded_llm, args=(s, llm, not no_serve), name="llm-start", daemon=True
        )
        llm_thread.start()
    try:
        _prepare_and_serve(s, dataset, data, host, port, no_serve, llm, llm_thread)
    finally:  # an error, Ctrl-C or the end of serving: no LLM process outlives the demo
        llm["cancel"].set()
        if llm.get("supervisor"):
            llm["supervisor"].stop()
        if llm.get("handle"):
            llm["handle"].stop()


def _prepare_and_serve(
    s: Any,
    dataset: str,
    data: Path,
    host: str,
    port: int,
    no_serve: bool,
    llm: dict[str, Any],
    llm_thread: threading.Thread | None,
) -> None:
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

    default_data, fmt, demo_user = DEMO_DATA[dataset]
    t0 = _T0[0]
    _, factory = open_store(s)
    with factory() as sess:
        n_events = sess.scalar(select(func.count()).select_from(Event)) or 0
    if n_events == 0:
        _step(f"ingest {data}")
        if not data.exists():
            raise typer.BadParameter(f"{data} not found; pass --data PATH")
        rep = ingest_file(data, factory, formats=formats(), fmt=fmt, zone=s.local_timezone)
        for w in rep.warnings:
            err_console.print(f"[bold yellow]warning:[/] {w}", highlight=False)
        if why := rep.nothing_stored():
            from core.errors import InvalidInputError

            raise InvalidInputError(f"nothing was stored from {data}: {why}")
        rejected = (
            f", {rep.rejected:,} rows rejected (chronotope ingest --report lists them)"
            if rep.rejected
            else ""
        )
        err_console.print(
            f"stored {rep.inserted:,} events, {rep.users_added:,} users, {rep.items_added:,} items{rejected}",
            highlight=False,
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
            model, path = domain.train_ranker(df, s.models_dir, progress=advance, fit_progress=fit_lines())
        err_console.print(f"saved {path.name}")
    else:
        _step(f"ranker: using {newest_model(s.models_dir).name}")  # type: ignore[union-attr]
    _step("index the catalog")
    from cli.index import index_cmd

    # the users' embedding queries (a minute on two cores) are filled in by the server behind the
    # API: each request encodes its own until then
    from retrieval.behaviour_model import newest_models

    trained = bool(newest_models(s.models_dir / "behaviour", domain.name))  # a second run keeps it
    index_cmd(kind="", rebuild=False, batch_size=128, users=False, behaviour=not trained)
    s = s.model_copy(update={"retrieval": s.retrieval.model_copy(update={"encode_queries_at_start": False})})
    with llm["lock"]:  # the API's steps are done: a server started meanwhile gets its full share
        llm["prepared"].set()
        if llm.get("handle"):
            llm["handle"].renice(0)
    if no_serve and llm_thread is not None:
        _step("LLM: waiting for the background install and start to finish")
        llm_thread.join()
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
        return
    if llm_thread is not None and llm_thread.is_alive():
        console.print(
            "The feature ranker and templates serve until the LLM joins; its progress is on stderr, "
            "a line says when it joins, and `/readyz` (`llm.reachable`, `chat`) says what serves.\n",
            highlight=False,
        )
    import uvicorn

    from api.app import configure_logging
    from cli.serving import create_served_app

    configure_logging(logging.WARNING)
    # uvicorn shuts down on SIGTERM, then raises the signal again under the handler it found: the
    # default one ended the process there, before the demo could stop the LLM server (its engine
    # kept gigabytes). A handler that unwinds lets the caller's ``finally`` stop it.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    uvicorn.run(create_served_app(s), host=host, port=port, log_level="warning")


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _start_embedded_llm(s: Any, out: dict[str, Any], supervise: bool = False) -> None:
    """Install the runtime and the model if needed (the model's download beside the install), start
    the server and warm it up; say when the LLM joins, or why not and leave the feature ranker
    serving. ``out["cancel"]`` (set when the demo ends) stops it before it starts a server."""

    def say(m: str) -> None:
        err_console.print(f"[dim]LLM[/] [{time.perf_counter() - _T0[0]:4.0f} s] {m}", highlight=False)

    try:
        from agent.llm.provision import fetch_model, is_provisioned, provision
        from agent.llm.runtime import setup
        from agent.llm.server import healthy, start_server, wait_healthy
        from agent.llm.warmup import warm_up

        if healthy(s.resolved_llm_base_url):
            say(f"an LLM server already answers at {s.resolved_llm_base_url}")
            return

        def fetch() -> None:
            try:
                fetch_model(s, say)
            except Exception:  # noqa: S110 - provision() below tries again and reports it
                pass

        fetcher = threading.Thread(target=fetch, name="llm-model-fetch", daemon=True)
        if s.llm.model_dir is None and not is_provisioned(s):
            fetcher.start()
        py = setup(s, say)
        if fetcher.is_alive():
            fetcher.join()
        provision(s, py, say)
        if out["cancel"].is_set():
            return
        with out["lock"]:  # while the demo still trains and indexes, the server starts behind them
            first = start_server(s, say=say, wait=False, nice=0 if out["prepared"].is_set() else 10)
            out["handle"] = first
        wait_healthy(first, s.llm.startup_timeout_s, say)
        if out["cancel"].is_set():  # the demo ended while the server started
            first.stop()
            return
        if supervise:  # serving: a server that dies is started again (after a backoff, logged)
            from agent.llm.supervisor import Supervisor

            handles = iter([first])
            sup = Supervisor(lambda: next(handles, None) or start_server(s, say=say), say=say)
            out["supervisor"] = sup
            sup.run_in_background()
        result = warm_up(s, wait_s=60)
        if result.get("warmed"):
            err_console.print(
                f"[bold green]==>[/] [{time.perf_counter() - _T0[0]:4.0f} s] the LLM joined: "
                f"{s.llm.model_name} at {s.resolved_llm_base_url}, warmed up "
                f"({sum(result['seconds'].values()):.0f} s); it now understands the chat, writes its "
                "replies and explanations",
                highlight=False,
            )
        else:
            say(
                f"the LLM server is up but its warm-up failed ({result.get('reason')}); "
                "requests fall back until it answers"
            )
    except Exception as exc:  # the demo goes on without the LLM, and says why
        err_console.print(f"[yellow]LLM not started: {exc}[/]; continuing with the feature ranker")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
