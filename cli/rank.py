"""``chronotope rank train``: train the learned ranker (LightGBM LambdaRank), versioned."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import console, fit_lines, handle_errors, progress, settings

rank_app = typer.Typer(help="Feature rankers.", no_args_is_help=True)


@rank_app.command("train")
@handle_errors
def train_cmd(
    history: Path | None = typer.Option(
        None, "--history", help="Check-in CSV to train on (default: the events in the store)."
    ),
    before: str | None = typer.Option(
        None, "--before", help="Ignore history rows at or after this time (ISO, UTC if no zone)."
    ),
    test: Path | None = typer.Option(
        None,
        "--test",
        help="A GETNext test CSV: history rows at or after its earliest time are ignored (as in eval).",
    ),
    weeks: int = typer.Option(
        8,
        help="Places: pseudo-targets are the check-ins of the last WEEKS (films: each person's latest "
        "ratings).",
    ),
    queries: int = typer.Option(9000, help="At most this many training queries."),
    out: Path | None = typer.Option(None, help="Folder for the model (default: <data dir>/models)."),
    feedback: bool = typer.Option(
        True,
        "--feedback/--no-feedback",
        help="Also learn from served recommendations people accepted or clicked (store only).",
    ),
) -> None:
    """Train on pseudo-targets cut from the end of the history; saves ranker-<version>.txt/.json.

    On the dev split pass ``--test NYC_val.csv`` (or ``--before``) so the val period is not trained on."""
    from domains import formats, get_domain, resolve
    from retrieval.feedback_training import FeedbackQueries, feedback_queries

    s = settings()
    reactions: FeedbackQueries | None = None
    if history is not None:
        parsed = formats().parse(history, None, s.local_timezone)
        df = parsed.events
        domain = get_domain(s.domain if s.domain != "auto" else parsed.meta.get("domain", "places"))
    else:
        from core.db import open_store
        from core.events_frame import events_frame
        from retrieval.serving_state import behaviour

        _, factory = open_store(s)
        with factory() as sess:
            domain = resolve(s.domain, sess)
            df = behaviour(events_frame(sess))  # feedback on recommendations is not behaviour
            if feedback:
                reactions = feedback_queries(sess, domain.feature_set())
    import pandas as pd

    from core import columns as C

    cut: pd.Timestamp | None = None
    if before is not None:
        cut = pd.Timestamp(before)
        cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
    if test is not None:
        # The dev/test period must never become pseudo-targets (that would train on the answers).
        t0 = formats().parse(test, None, s.local_timezone).events[C.TIME].min()
        cut = t0 if cut is None else min(cut, t0)
    if cut is not None:
        df = df[df[C.TIME] < cut].reset_index(drop=True)
    if df.empty:
        raise typer.BadParameter("no events to train on: ingest data first or pass --history")
    with progress("build training queries", domain.training_size(df, queries)) as advance:
        model, path = domain.train_ranker(
            df,
            out or s.models_dir,
            weeks=weeks,
            max_queries=queries,
            progress=advance,
            feedback=reactions,
            fit_progress=fit_lines(),
        )
    console.print(
        f"saved {path} ({model.name}; {model.meta['train_queries']} queries, of which "
        f"{model.meta['feedback_queries']} from people's feedback; "
        f"best iteration {model.meta['best_iteration']})"
    )
    # the behaviour model serving reads beside the ranker, trained on the same history
    from retrieval.behaviour_source import train_for

    try:
        bm, bpath = train_for(domain.feature_set(), df, None, out or s.models_dir, progress=console.print)
        console.print(
            f"saved {bpath} (behaviour model {bm.version}, held-out loss {bm.meta['held_out_loss']})"
        )
    except ValueError as exc:
        console.print(f"behaviour model not trained: {exc}")


def register(app: typer.Typer) -> None:
    app.add_typer(rank_app, name="rank")
