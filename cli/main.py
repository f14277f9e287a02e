"""Entry point: ``chronotope --help`` lists the subcommands (contract in shared/DESIGN.md)."""

from __future__ import annotations

import importlib
import os

import typer

from cli.common import setup_logging

# Each module adds its own commands with ``register(app)``; heavy imports stay inside the commands
# so ``chronotope --help`` is fast.
COMMAND_MODULES = (
    "cli.db",
    "cli.ingest",
    "cli.mine",
    "cli.recommend_batch",
    "cli.index",
    "cli.rank",
    "cli.eval",
    "cli.eval_chat",
    "cli.eval_explain",
    "cli.llm",
    "cli.keys",
    "cli.experiments",
    "cli.serve",
    "cli.demo",
)

app = typer.Typer(
    name="chronotope",
    help="Chronotope: recommendations from when and where people do things, explained.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    # Model hubs are unreachable on our machines; never let a library try (and hang) at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    setup_logging(verbose)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
