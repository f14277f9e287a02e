"""The LLM engine's figures and the LLM calls Chronotope makes, against a running server.

    CHRONOTOPE_DATA_DIR=X .venv/bin/chronotope llm serve &     # or set CHRONOTOPE_LLM_BASE_URL
    .venv/bin/python benchmarks/llm.py [--runs 8] [--json OUT.json] [--skip-calls]

Prints the machine's CPU (and whether it has AVX-512 / AVX2 / AMX) and the served model and
quantization, then

- prefill tokens/s: a ~700-token prompt that shares no prefix with the last, one token out
  (one stream, and 4 at once: their sum);
- decode tokens/s: 128 tokens written after a short prompt, timed from the first token
  (one stream, and 4 at once: their sum); and the first-token time of that short prompt;
- the calls as the app makes them (the same classes, prompts and settings): the rerank of 20
  candidates, and the explanations of k = 3 and k = 5 items (concurrent requests of one session).

The chat turn as served (understanding, tool, streamed reply) is timed by
``chronotope eval-chat --conversations`` (first reply token and whole turn, p50/p95), which runs
the agent itself; docs/measurements.md keeps both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from agent.assembly import gateway
from agent.explanations import Situation
from agent.llm.explain import Explainer
from agent.llm.rerank import LLMReranker
from agent.llm.server import cpu_flags
from core.settings import Settings
from domains import get_domain
from mining import Fact, UserProfile
from retrieval.types import Candidate, RequestContext

CPUINFO = Path("/proc/cpuinfo")
KINDS = ["Coffee Shop", "Bar", "Art Museum", "Park", "Gym", "Pizza Place", "Bookstore", "Deli"]
WORDS = (
    "the person usually walks to a coffee shop before work and meets friends at a bar on friday "
    "evenings while weekends bring parks museums and long lunches near the river"
).split()


def cpu() -> dict[str, Any]:
    """The CPU's name and the flags the server's dtype choice reads (agent/llm/server.cpu_flags)."""
    flags = cpu_flags()
    names = [
        ln.split(":", 1)[1].strip() for ln in CPUINFO.read_text().splitlines() if ln.startswith("model name")
    ]
    return {
        "model": names[0] if names else platform.processor(),
        "cores": os.cpu_count(),
        "avx512": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_bf16" in flags,
        "avx2": "avx2" in flags,
    }


def served(settings: Settings) -> dict[str, Any]:
    """The served model, and its quantization as the model's directory says (embedded server)."""
    from agent.llm.provision import model_dir

    out: dict[str, Any] = {"name": settings.llm.model_name, "quantization": settings.llm.quantization}
    try:
        config = json.loads((model_dir(settings) / "config.json").read_text())
        q = config.get("quantization_config")
        dtype = config.get("torch_dtype") or config.get("dtype", "?")
        out["quantization"] = q.get("format", "quantized") if q else str(dtype)
    except (OSError, ValueError):
        pass
    return out


def pct(xs: list[float]) -> dict[str, float]:
    a = np.array(xs)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3)}


class Engine:
    """Raw completions: what the server does with prompts of a known size."""

    def __init__(self, settings: Settings) -> None:
        from agent.llm.client import make_openai_client

        self.client = make_openai_client(settings, timeout_s=300)
        self.model = settings.llm.model_name
        self.n = 0

    def _prompt(self, words: int) -> str:
        self.n += 1  # a new first line each time: no cached prefix
        rng = np.random.default_rng(self.n)
        body = " ".join(WORDS[int(i)] for i in rng.integers(0, len(WORDS), words))
        return f"Note {self.n} {rng.integers(1 << 30)}.\n{body}\nSummarise the note."

    def stream(self, prompt: str, max_tokens: int) -> tuple[float, float, int]:
        """(first-token s, whole s, tokens out) of one streamed completion."""
        t0 = time.perf_counter()
        first, n = None, 0
        chunks = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0.0,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
        for c in chunks:
            if c.choices and c.choices[0].delta.content and first is None:
                first = time.perf_counter() - t0
            if c.usage is not None:
                n = c.usage.completion_tokens
        return first or 0.0, time.perf_counter() - t0, n

    def prefill(self, streams: int, words: int = 560) -> float:
        """Prompt tokens per second (summed over ``streams`` concurrent prompts)."""
        prompts = [self._prompt(words) for _ in range(streams)]
        n_tokens = [self._tokens(p) for p in prompts]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(streams) as pool:
            list(pool.map(lambda p: self.stream(p, 1), prompts))
        return sum(n_tokens) / (time.perf_counter() - t0)

    def decode(self, streams: int, out_tokens: int = 128) -> tuple[float, float]:
        """(tokens/s summed over streams, mean first-token s) for short prompts, long answers."""
        prompts = [self._prompt(20) for _ in range(streams)]
        with ThreadPoolExecutor(streams) as pool:
            got = list(pool.map(lambda p: self.stream(p, out_tokens), prompts))
        rate = sum((n - 1) / (whole - first) for first, whole, n in got if n > 1 and whole > first)
        return rate, float(np.mean([g[0] for g in got]))

    def _tokens(self, prompt: str) -> int:
        resp = self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": prompt}], max_tokens=1
        )
        return int(resp.usage.prompt_tokens)


def profile(i: int) -> UserProfile:
    facts = [
        Fact("data.summary", "data", f"{100 + i} check-ins at 30 places over 200 days.", {}, 100 + i, 1.0),
        Fact("rhythm.peak_hours", "rhythm", f"Most active around {8 + i % 12}:00 local time.", {}, 100, 1.0),
        Fact(
            "habit.wd_evening",
            "habit",
            f"On weekday evenings: mostly at {KINDS[i % len(KINDS)]} places.",
            {"category": KINDS[i % len(KINDS)]},
            30,
            0.8,
        ),
        Fact("trans.next", "transition", "After Office, likely next: Coffee Shop, Bar.", {}, 20, 0.6),
    ]
    return UserProfile(f"u{i}", facts, " ".join(f.statement for f in facts[1:]), 100 + i, None)


def candidates(seed: int, n: int = 20) -> list[Candidate]:
    rng = np.random.default_rng(seed)
    return [
        Candidate(
            item_id=f"i{seed}-{j}",
            category=KINDS[int(rng.integers(len(KINDS)))],
            attrs={"lat": 40.75, "lon": -73.98},
            sources=["repeat"] if j < 5 else ["popular"],
            features={
                "user_count_log": float(np.log1p(rng.integers(0, 9))),
                "distance_km": float(rng.random() * 5),
            },
            score=float(1 - j / 20),
        )
        for j in range(n)
    ]


def calls(s: Settings, runs: int) -> dict[str, Any]:
    """The rerank of 20 and the explanations of k items, through the app's own classes."""
    domain = get_domain("places")
    gw = gateway(s)
    rr, ex = LLMReranker(s.llm, domain), Explainer(s.llm)
    ctx = RequestContext(time=datetime(2012, 12, 5, 19, tzinfo=UTC), text="somewhere for the evening")
    situation = Situation.plain(ctx, domain)

    def rerank(i: int) -> float:
        with gw.session(time.monotonic() + 120) as session:
            t = time.perf_counter()
            out = rr.rerank(session, profile(i % 3), ctx, candidates(i))
            assert out.error is None, out.error
            return time.perf_counter() - t

    def explain(i: int, k: int) -> tuple[float, str]:
        with gw.session(time.monotonic() + 120) as session:
            t = time.perf_counter()
            e = ex.explain(session, profile(i), ctx, candidates(100 + i)[:k], situation=situation)
            return time.perf_counter() - t, e.source

    rerank(0)  # warm-up: the prompt's prefix is cached from here on, as in serving
    explain(99, 5)  # and the explanations' schemas are compiled (the server's warm-up does both)
    out: dict[str, Any] = {"rerank_20_s": pct([rerank(i) for i in range(runs)])}
    for k in (3, 5):
        got = [explain(i, k) for i in range(max(3, runs // 2))]
        out[f"explain_{k}_s"] = pct([t for t, _ in got])
        out[f"explain_{k}_sources"] = sorted({src for _, src in got})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    ap.add_argument("--skip-calls", action="store_true", help="Engine figures only.")
    a = ap.parse_args()
    s = Settings(llm={"timeout_s": 300, "retries": 0})
    report: dict[str, Any] = {"cpu": cpu(), "model": served(s)}
    print(json.dumps(report["cpu"]), json.dumps(report["model"]), sep="\n", flush=True)
    eng = Engine(s)
    eng.decode(1, 8)  # warm-up
    engine: dict[str, Any] = {}
    for streams in (1, 4):
        prefill = [eng.prefill(streams) for _ in range(2)]
        engine[f"prefill_tok_s_{streams}"] = round(float(np.median(prefill)), 1)
        rates = [eng.decode(streams) for _ in range(2)]
        engine[f"decode_tok_s_{streams}"] = round(float(np.median([r for r, _ in rates])), 1)
        engine[f"first_token_s_{streams}"] = round(float(np.median([f for _, f in rates])), 3)
        print(json.dumps({k: v for k, v in engine.items() if k.endswith(f"_{streams}")}), flush=True)
    report["engine"] = engine
    if not a.skip_calls:
        report["calls"] = calls(s, a.runs)
        print(json.dumps(report["calls"]), flush=True)
    if a.json:
        a.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
