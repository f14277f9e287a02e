"""The floor for benchmarks/load_api.py --bare: a FastAPI app that does no work.

Same framework, server, worker count, request body and response size class as
POST /v1/recommendations, but the handler validates the body and returns ten fixed items. What
the real endpoint loses against this app is the cost of recommending, not of HTTP on these cores.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Context(BaseModel):
    time: str | None = None


class Body(BaseModel):
    user_id: str
    k: int = 10
    explain: bool = True
    use_llm: bool = False
    context: Context = Context()


ITEMS = [{"item_id": f"item-{i}", "score": 1.0 / (i + 1), "explanation": "a fixed line"} for i in range(10)]


@app.post("/v1/recommendations")
def recommend(body: Body) -> dict[str, object]:
    return {"user_id": body.user_id, "items": ITEMS[: body.k]}


@app.get("/readyz")
def readyz() -> dict[str, object]:
    return {"serving": {"worker_pid": os.getpid()}}
