"""Helpers every CLI command shares: settings, the store, progress bars and error exits."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from core.errors import ChronotopeError
from core.settings import Settings, get_settings

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return get_settings()


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _validation_message(exc: ValidationError) -> str:
    """One line for a refused value; for Settings, named by the environment variable that set it."""
    parts = []
    for e in exc.errors():
        loc = [str(x) for x in e["loc"]]
        where = "CHRONOTOPE_" + "__".join(loc).upper() if exc.title == "Settings" else ".".join(loc)
        parts.append(f"{where}: {e['msg']}" if loc else e["msg"])
    return f"invalid {'setting' if exc.title == 'Settings' else exc.title}: " + "; ".join(parts)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Domain errors become one line on stderr and exit code 1, not a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ChronotopeError as exc:
            raise fail(exc.message) from exc
        except ValidationError as exc:
            raise fail(_validation_message(exc)) from exc
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


PROGRESS_EVERY_S = 10.0  # a line this often when the output is a log, not a terminal


@contextmanager
def progress(description: str, total: float | None) -> Iterator[Callable[[float], None]]:
    """A progress bar on stderr; yields ``advance(n)``. When stderr is not a terminal (a log, CI),
    plain lines instead: one at the start, one every PROGRESS_EVERY_S and one at the end."""
    if not sys.stderr.isatty():
        with _progress_lines(description, total) as advance:
            yield advance
        return
    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    with prog:
        task = prog.add_task(description, total=total)

        def advance(n: float = 1) -> None:
            prog.advance(task, n)

        yield advance


@contextmanager
def _progress_lines(description: str, total: float | None) -> Iterator[Callable[[float], None]]:
    t0 = time.monotonic()
    state = {"done": 0.0, "last": t0}

    def line() -> str:
        done, elapsed = state["done"], time.monotonic() - t0
        if not total:
            return f"{description}: {done:,.0f} done after {elapsed:.0f} s"
        left = f", ~{elapsed * (total - done) / done:.0f} s left" if 0 < done < total else ""
        return (
            f"{description}: {done:,.0f}/{total:,.0f} ({100 * done / total:.0f}%) after {elapsed:.0f} s{left}"
        )

    def advance(n: float = 1) -> None:
        state["done"] += n
        now = time.monotonic()
        if now - state["last"] >= PROGRESS_EVERY_S:
            state["last"] = now
            print(line(), file=sys.stderr, flush=True)

    print(line(), file=sys.stderr, flush=True)
    yield advance
    print(line(), file=sys.stderr, flush=True)


def fit_lines(what: str = "fitting the ranker (LightGBM LambdaRank, stops early)") -> Callable[[int], None]:
    """``on_round(i)`` for a model fit: a line when the fit starts and one every PROGRESS_EVERY_S,
    so the minutes after the last training query do not look like a hang."""
    state = {"t0": 0.0, "last": 0.0}

    def on_round(i: int) -> None:
        now = time.monotonic()
        if not state["t0"]:
            state["t0"] = state["last"] = now
            err_console.print(f"{what}: round {i}", highlight=False)
        elif now - state["last"] >= PROGRESS_EVERY_S:
            state["last"] = now
            err_console.print(f"{what}: round {i} after {now - state['t0']:.0f} s", highlight=False)

    return on_round


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # library chatter stays out of the default output (a request line per LLM call, FAISS's loader)
    for noisy in ("httpx", "httpx2", "sentence_transformers", "alembic", "urllib3", "faiss", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def echo_table(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not rows:
        console.print(f"{title}: (none)")
        return
    table = Table(title=title)
    for col in rows[0]:
        table.add_column(str(col))
    for row in rows:
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()])
    console.print(table)


def dev_world(s: Any, split: Any, work_dir: Path, ranker: str) -> Any:
    """The scratch world the chat and explanation evaluations run in (evaluation/world.py):
    a fresh store in ``work_dir``, the ranker trained on the history first if none is there yet."""
    from domains.places import PLACES
    from evaluation.world import build_world
    from retrieval.rankers import newest_model

    fset = PLACES.feature_set()
    if ranker == "learned" and newest_model(work_dir / "models") is None:
        from retrieval.train_cli_support import train_and_save

        console.print(
            "no ranker trained on this history yet: training one "
            "(pseudo-targets, one model per setting, ~3-5 min)"
        )
        with progress("build training queries", 2 * 9000) as advance:  # one set per setting
            train_and_save(split.history, work_dir / "models", fset, progress=advance)
    world = build_world(split, s, work_dir, ranker, s.index_dir, PLACES, say=lambda m: err_console.print(m))
    warm_llm(s)
    return world


def warm_llm(s: Settings) -> None:
    """Warm the LLM server up before an evaluation measures it (when the LLM is on)."""
    if s.llm.enabled:
        # A cold server's first requests take longer than the timeout; measured turns must not pay
        # for that (nor find the breaker opened by it), as the API's own start-up warm-up ensures.
        from agent.llm.warmup import warm_up

        result = warm_up(s, wait_s=60)
        err_console.print(f"LLM warm-up: {result}")


def trained_on_folder(models_dir: Path, domain: str, history: Any) -> Path:
    """Where a ranker trained on exactly ``history`` is kept: models/eval/<domain>-<digest of its
    (user, item, time) rows>. An evaluation ranks with it, never with the store's served model,
    which may have seen the targets."""
    import hashlib

    import pandas as pd

    from core import columns as C

    key = pd.util.hash_pandas_object(history[[C.USER, C.ITEM, C.TIME]].astype(str), index=False)
    return models_dir / "eval" / f"{domain}-{hashlib.sha256(key.to_numpy().tobytes()).hexdigest()[:12]}"
