"""``chronotope mine [--user ID]`` and ``chronotope profile show|plot --user ID``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from cli.common import console, handle_errors, progress, settings

profile_app = typer.Typer(help="Inspect mined profiles.", no_args_is_help=True)


@handle_errors
def mine_cmd(
    user: list[str] | None = typer.Option(None, "--user", help="Mine only this user (repeatable)."),
    workers: int = typer.Option(
        0,
        "--workers",
        help="Processes (local; 0: one per core, at most 4) or CPUs of a local Ray runtime (0: all).",
    ),
    engine: str = typer.Option("local", "--engine", help="local (processes on this machine) or ray."),
    address: str | None = typer.Option(
        None, "--address", help="Ray: join the cluster at this address (default: start a local runtime)."
    ),
    restart: bool = typer.Option(
        False, "--restart", help="Ignore an interrupted earlier run's progress and mine everyone."
    ),
) -> None:
    """Mine per-user profiles (facts + text: time always, places where events have them); stores a
    new version when events changed."""
    from core.db import open_store
    from core.errors import InvalidInputError
    from jobs.mine import mine_users

    if engine not in ("local", "ray"):
        raise InvalidInputError(f"unknown engine {engine!r}: local or ray")
    if address and engine != "ray":
        raise InvalidInputError("--address is for --engine ray")
    s = settings()
    _, factory = open_store(s)
    t0 = time.perf_counter()
    with factory() as sess:
        from sqlalchemy import func, select

        from core.models import User

        n_users = len(user) if user else int(sess.scalar(select(func.count()).select_from(User)) or 0)
    if n_users == 0:
        console.print("no users in the store yet: run `chronotope ingest` first")
        return
    with progress(f"mine profiles ({engine})", n_users) as advance:
        out = mine_users(
            factory,
            user or None,
            data_dir=s.data_dir,
            progress=advance,
            workers=workers or None,
            engine=engine,
            domain=s.domain,
            address=address,
            resume=not restart,
        )
    dt = time.perf_counter() - t0
    mined = out["mined"]
    skipped = f"; {out['skipped']:,} done by an interrupted earlier run" if out["skipped"] else ""
    console.print(
        f"mined {mined:,} users in {dt:.1f} s ({mined / max(dt, 1e-9):.0f} users/s); "
        f"{out['new_versions']:,} new profile versions{skipped}"
    )
    failed = out["failed"]
    for u, why in sorted(failed.items())[:20]:
        console.print(f"[red]user {u} failed[/]: {why}", highlight=False)
    if failed:
        console.print(f"[red]{len(failed)} user(s) failed[/] (their earlier profile, if any, stays)")
        raise typer.Exit(1)


@profile_app.command("show")
@handle_errors
def show_cmd(
    user: str = typer.Option(..., "--user", help="User id."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole profile as JSON."),
) -> None:
    """Print a user's latest profile: text and facts."""
    from core.db import open_store
    from core.errors import NotFoundError
    from retrieval.profile_store import latest_profile, profile_versions

    _, factory = open_store(settings())
    with factory() as sess:
        p = latest_profile(sess, user)
        versions = profile_versions(sess, user)
    if p is None:
        raise NotFoundError(f"no profile for user {user!r}: run `chronotope mine --user {user}`")
    if as_json:
        console.print_json(json.dumps(p.to_dict()))
        return
    console.print(f"[bold]user {user}[/] — version {versions[-1]['version']}, {p.n_events} events\n")
    console.print(p.text + "\n", highlight=False)
    for f in p.facts:
        flag = "" if f.sufficient else " [dim](not enough data)[/]"
        console.print(
            f"[cyan]{f.id}[/] ({f.support}, {f.confidence:.2f}){flag}: {f.statement}", highlight=False
        )


@profile_app.command("plot")
@handle_errors
def plot_cmd(
    user: str = typer.Option(..., "--user", help="User id."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the PNGs (default: <data dir>/plots)."),
) -> None:
    """Write PNGs of the user's weekly rhythm heatmap and what the catalog adds (places: clusters)."""
    from core.db import open_store
    from core.errors import NotFoundError
    from core.events_frame import events_frame
    from mining.plots import PLOTS, render_plot

    s = settings()
    _, factory = open_store(s)
    with factory() as sess:
        df = events_frame(sess, [user])
    if df.empty:
        raise NotFoundError(f"no events for user {user!r}")
    folder = out or s.plots_dir
    folder.mkdir(parents=True, exist_ok=True)
    for name in PLOTS:
        path = folder / f"user-{user}-{name}.png"
        path.write_bytes(render_plot(name, df, user))
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("mine")(mine_cmd)
    app.add_typer(profile_app, name="profile")
