"""The embedded vLLM server's command line: dtype chosen from what the CPU computes natively."""

from __future__ import annotations

from pathlib import Path

from agent.llm.server import cpu_flags, server_command, serving_dtype
from core.settings import Settings


def test_bf16_only_where_the_cpu_has_it() -> None:
    s = Settings(env="test")
    assert serving_dtype(s, {"avx2", "avx512f", "avx512_bf16"}) == "bfloat16"
    assert serving_dtype(s, {"avx2", "amx_bf16"}) == "bfloat16"
    assert serving_dtype(s, {"avx", "avx2", "fma"}) == "float32"  # e.g. an AVX2-only EPYC
    assert serving_dtype(Settings(env="test", llm={"dtype": "bfloat16"}), set()) == "bfloat16"


def test_cpu_flags_reads_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\nbugs\t: none\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_command_names_model_port_and_dtype(tmp_path: Path) -> None:
    s = Settings(env="test", data_dir=tmp_path, llm={"dtype": "float32"})
    cmd = server_command(s, 8123)
    assert cmd[cmd.index("--port") + 1] == "8123"
    assert cmd[cmd.index("--dtype") + 1] == "float32"
    assert cmd[cmd.index("--served-model-name") + 1] == s.llm.model_name


def test_speculation_only_when_asked(tmp_path: Path) -> None:
    import json

    plain = server_command(Settings(env="test", data_dir=tmp_path), 8123)
    assert "--speculative-config" not in plain
    cmd = server_command(Settings(env="test", data_dir=tmp_path, llm={"speculative": "ngram"}), 8123)
    config = json.loads(cmd[cmd.index("--speculative-config") + 1])
    assert config["method"] == "ngram" and config["num_speculative_tokens"] >= 1
    assert config["prompt_lookup_min"] <= config["prompt_lookup_max"]
