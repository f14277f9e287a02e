"""What LangChain would add to our LLM calls, measured (the redesign removed it; docs/measurements.md).

Every LLM call goes through agent/llm/gateway.py over the `openai` client: it owns the deadline,
admission, breaker, retries and the fallback. This script measures what LangChain's ChatOpenAI
(the candidate replacement for that client) costs on top, against an in-process stub of the
OpenAI-compatible API so that the server's time is zero and only the client's remains:

- import time of each client (a fresh interpreter each, median of 5);
- wall and CPU time per call (plain chat, and JSON-schema structured output), N calls each;
- the disk size of the distributions only LangChain needs.

    .venv/bin/pip install langchain-openai   # the dev extra has it (tests use it as a client)
    .venv/bin/python benchmarks/langchain_overhead.py [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from importlib import metadata
from typing import Any

SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["recommend", "explain"]},
        "wish": {"type": "string"},
    },
    "required": ["action", "wish"],
    "additionalProperties": False,
}
ANSWER = json.dumps({"action": "recommend", "wish": "quiet cafe"}, separators=(",", ":"))
MESSAGES = [{"role": "system", "content": "Fill the form."}, {"role": "user", "content": "a quiet cafe"}]
LANGCHAIN_ONLY = (
    "langchain",
    "langchain-core",
    "langchain-openai",
    "langchain-protocol",
    "langsmith",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-prebuilt",
    "langgraph-sdk",
    "tiktoken",
    "jsonpatch",
    "requests-toolbelt",
    "xxhash",
    "zstandard",
    "orjson",
)


def _stub_server() -> str:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    def completions(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "m"),
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
        }

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v1"


def import_seconds(module: str, runs: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out.append(float(done.stdout))
    return statistics.median(out)


def per_call(fn: Any, n: int) -> dict[str, float]:
    fn()  # warm: connection, schema conversion caches
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return {
        "wall_ms": round((time.perf_counter() - wall) / n * 1000, 3),
        "cpu_ms": round((time.process_time() - cpu) / n * 1000, 3),
    }


def dist_mb(names: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for name in names:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        out[name] = round(sum((f.size or 0) for f in files) / 1e6, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()
    import openai
    from langchain_openai import ChatOpenAI

    url = _stub_server()
    client = openai.OpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    chat = ChatOpenAI(model="m", base_url=url, api_key="EMPTY", max_retries=0, temperature=0)  # type: ignore[arg-type]
    # LangChain wants a "title" in a raw JSON schema (it names the function by it)
    structured = chat.with_structured_output({"title": "turn", **SCHEMA}, method="json_schema", strict=True)
    fmt = {"type": "json_schema", "json_schema": {"name": "turn", "schema": SCHEMA, "strict": True}}

    def plain_openai() -> Any:
        return client.chat.completions.create(model="m", messages=MESSAGES, temperature=0)  # type: ignore[arg-type]

    def form_openai() -> Any:
        r = client.chat.completions.create(model="m", messages=MESSAGES, temperature=0, response_format=fmt)  # type: ignore[arg-type]
        return json.loads(r.choices[0].message.content or "")

    result = {
        "python": sys.version.split()[0],
        "openai": openai.__version__,
        "langchain_openai": metadata.version("langchain-openai"),
        "langchain_core": metadata.version("langchain-core"),
        "calls": args.calls,
        "import_s": {
            "openai": import_seconds("openai"),
            "langchain_openai": import_seconds("langchain_openai"),
        },
        "per_call": {
            "openai chat": per_call(plain_openai, args.calls),
            "langchain ChatOpenAI.invoke": per_call(lambda: chat.invoke(MESSAGES), args.calls),
            "openai json_schema form": per_call(form_openai, args.calls),
            "langchain with_structured_output": per_call(lambda: structured.invoke(MESSAGES), args.calls),
        },
        "langchain_only_mb": dist_mb(LANGCHAIN_ONLY),
    }
    result["langchain_only_mb_total"] = round(sum(result["langchain_only_mb"].values()), 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
