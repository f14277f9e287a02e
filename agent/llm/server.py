"""Start, watch and stop the embedded vLLM server (OpenAI-compatible) on 127.0.0.1.

With CHRONOTOPE_LLM_BASE_URL set (an external server, e.g. `vllm serve` on GPUs) nothing is started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from agent.llm.client import server_root
from agent.llm.provision import is_provisioned, model_dir
from agent.llm.runtime import venv_python
from core.errors import ProvisioningError
from core.settings import Settings


@dataclass
class ServerHandle:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    group_file: Path | None = None  # where start_server noted the process group (see stop_stale_server)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 20.0) -> int:
        """Stop the server's whole process group (vLLM spawns an engine process and workers that
        outlive a killed API process: 7.1 GB stayed after a kill), SIGTERM then SIGKILL; also when
        the leader is already dead. Returns how many processes of the group were still running."""
        pgid = self.process.pid
        left = group_members(pgid)
        if not left and not self.alive():
            self.process.poll()  # reap
            _forget_group(self.group_file, pgid)
            return 0
        _stop_group(pgid, timeout_s, self.process)
        _forget_group(self.group_file, pgid)
        return len(left)

    def renice(self, value: int = 0) -> int:
        """Set the niceness of every thread of the server's processes (Linux keeps it per
        thread, and the engine's compute threads inherit it); returns how many were changed.
        Raising priority back needs the right to do so (root, or CAP_SYS_NICE): else unchanged."""
        changed = 0
        for pid in group_members(self.process.pid):
            try:
                tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
            except OSError:
                continue
            for tid in tids:
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, value)
                    changed += 1
                except OSError:
                    pass
        return changed


def group_members(pgid: int, proc_root: Path = Path("/proc")) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, read from /proc."""
    out = []
    for d in proc_root.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(d.name))
    return out


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_group(pgid: int, timeout_s: float, leader: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM to process group ``pgid``, SIGKILL to what is left after ``timeout_s``. ``leader``:
    our child that leads the group (reaped while waiting; a stale group's leader is not ours)."""
    _signal_group(pgid, signal.SIGTERM)
    if not _wait_group_gone(pgid, timeout_s, leader):
        _signal_group(pgid, signal.SIGKILL)
        _wait_group_gone(pgid, 10.0, leader)


def _wait_group_gone(pgid: int, timeout_s: float, leader: subprocess.Popen[bytes] | None) -> bool:
    end = time.monotonic() + timeout_s
    while True:
        if leader is not None:
            leader.poll()  # reap the leader so it does not linger as a zombie of the group
        if not group_members(pgid):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.2)


def group_file(settings: Settings, port: int) -> Path:
    """Where the embedded server on ``port`` notes its process group (one file per port: two
    servers of one data dir on two ports are not stale to each other)."""
    return settings.logs_dir / f"vllm-{port}.pgid"


def _forget_group(f: Path | None, pgid: int) -> None:
    if f is None:
        return
    try:
        if f.read_text().strip() == str(pgid):
            f.unlink()
    except (OSError, ValueError):
        pass


def stop_stale_server(f: Path, say: Callable[[str], None] = lambda _m: None) -> int:
    """Stop the process group of an embedded server that a previous Chronotope process started and
    did not stop (it was killed itself): its engine would otherwise hold gigabytes for ever.
    Only a group whose processes still run vLLM is touched. Returns how many processes it stopped."""
    try:
        pgid = int(f.read_text().strip())
    except (OSError, ValueError):
        return 0
    ours = [p for p in group_members(pgid) if b"vllm" in _cmdline(p)]
    if ours:
        say(f"stopping {len(ours)} processes of an earlier embedded LLM server (process group {pgid})")
        _stop_group(pgid, 20.0)
    f.unlink(missing_ok=True)
    return len(ours)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def serving_dtype(settings: Settings, flags: set[str] | None = None) -> str:
    """bf16 where the CPU computes it natively (AVX-512 BF16 or AMX); else float32. Without those
    instructions bf16 is emulated: on an AVX2-only EPYC a 600-token rerank took ~40 s in bf16."""
    if settings.llm.dtype != "auto":
        return settings.llm.dtype
    flags = cpu_flags() if flags is None else flags
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & flags else "float32"


# Propose up to 3 tokens copied from where the last 2-4 tokens occur in the prompt (names, kinds and
# values the answers repeat); checked in one forward pass, so a miss costs that pass's extra tokens.
NGRAM = '{"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_min": 2, "prompt_lookup_max": 4}'


def server_command(settings: Settings, port: int) -> list[str]:
    speculative = ["--speculative-config", NGRAM] if settings.llm.speculative == "ngram" else []
    return [
        str(venv_python(settings)),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir(settings)),
        "--served-model-name",
        settings.llm.model_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "4096",
        "--enforce-eager",  # ~47 s to ready on 2 cores instead of ~2 min of graph compilation
        "--dtype",
        serving_dtype(settings),
        # The chat's fixed instructions and examples are a long shared prefix: compute it once.
        "--enable-prefix-caching",
        # Compact JSON for the chat's structured outputs: a small model otherwise pads JSON with
        # whitespace, token by token, and this is a server setting (ignored per request).
        "--structured-outputs-config",
        '{"backend": "xgrammar", "disable_any_whitespace": true}',
        *speculative,
    ]


def healthy(base_url: str, timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(f"{server_root(base_url)}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def start_server(
    settings: Settings,
    port: int | None = None,
    *,
    wait: bool = True,
    say: Callable[[str], None] = lambda _m: None,
    nice: int = 0,
) -> ServerHandle:
    """``nice``: start at a lower CPU priority (the demo, while its own preparation still runs;
    it sets the server back to normal with ``ServerHandle.renice`` when that is done)."""
    if not settings.llm_is_embedded:
        raise ProvisioningError("CHRONOTOPE_LLM_BASE_URL points at an external server; nothing to start")
    if not venv_python(settings).exists():
        raise ProvisioningError("the LLM runtime is not installed: run `chronotope llm setup`")
    if not is_provisioned(settings):
        raise ProvisioningError("the model is not provisioned: run `chronotope llm pull`")
    port = port or settings.llm.port
    base_url = f"http://127.0.0.1:{port}/v1"
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs_dir / "vllm.log"
    pgid_file = group_file(settings, port)
    stop_stale_server(pgid_file, say)
    if healthy(base_url):
        raise ProvisioningError(f"something already serves {base_url}")
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        # vLLM keeps one core for the API process by default; on a 2-core machine that halves
        # the engine. The API process is mostly idle while the engine computes, so use both.
        "VLLM_CPU_NUM_OF_RESERVED_CPU": os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU", "0"),
    }
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            server_command(settings, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
    pgid_file.write_text(str(proc.pid))  # so a later start can stop it if we die
    handle = ServerHandle(proc, base_url, log_path, pgid_file)
    if wait:
        wait_healthy(handle, settings.llm.startup_timeout_s, say)
    return handle


def wait_healthy(handle: ServerHandle, timeout_s: float, say: Callable[[str], None]) -> None:
    t0 = time.monotonic()
    last = -30.0
    while time.monotonic() - t0 < timeout_s:
        if not handle.alive():
            handle.stop()  # the API process died: its engine processes must not stay behind
            tail = handle.log_path.read_text(errors="replace")[-1500:]
            raise ProvisioningError(f"the vLLM server exited during start-up; log tail:\n{tail}")
        if healthy(handle.base_url):
            say(f"vLLM ready at {handle.base_url} after {time.monotonic() - t0:.0f} s")
            return
        if time.monotonic() - last >= 15:
            say(f"waiting for vLLM to start ({time.monotonic() - t0:.0f} s; log: {handle.log_path})")
            last = time.monotonic()
        time.sleep(1.0)
    handle.stop()
    raise ProvisioningError(f"vLLM not healthy after {timeout_s:.0f} s; see {handle.log_path}")
