"""``chronotope eval-chat --format movielens`` and ``eval-explain --format movielens``: the chat and
the explanations on the films store of CHRONOTOPE_DATA_DIR, as served (evaluation/film_chat.py)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.common import console, progress, settings, warm_llm
from core.errors import InvalidInputError


def _served() -> tuple[Any, list[str], Any]:
    from sqlalchemy import select

    from agent.assembly import build_services
    from core.db import open_store
    from core.models import Event

    s = settings()
    _, factory = open_store(s)
    services = build_services(s, factory, traces=False)
    if services.domain.name != "films":
        raise InvalidInputError(f"{s.data_dir} holds a {services.domain.name} catalog, not films")
    users = sorted(u for u, h in services.retriever.histories.items() if len(h) >= 20)
    warm_llm(s)

    def rated_of(user: str) -> set[str]:
        with factory() as sess:
            q = select(Event.item_id).where(Event.user_id == user, Event.kind == "rating")
            return {str(i) for i in sess.scalars(q)}

    return services, users, rated_of


def films_chat(json_out: Path, requests: str, seed: int) -> dict[str, Any]:
    from evaluation.film_chat import load_wishes, run_chat

    if requests not in ("dev", "holdout", "all"):
        raise InvalidInputError("--requests must be dev, holdout or all")
    services, users, rated_of = _served()
    wishes = load_wishes(requests)
    with progress("film wishes", len(wishes)) as advance:
        out = run_chat(services, users, wishes, rated_of, datetime.now(UTC), seed, advance)
    out.update(model=services.llm.model if services.llm.enabled else None, seed=seed)
    _write(json_out, out)
    console.print_json(json.dumps({k: v for k, v in out.items() if k != "turns"}, default=str))
    return out


def films_explain(json_out: Path, sample: int, k: int, seed: int) -> dict[str, Any]:
    from evaluation.film_chat import run_explain

    services, users, _ = _served()
    picked = random.Random(seed).sample(users, min(sample, len(users)))
    with progress("explained recommendations", len(picked)) as advance:
        out = run_explain(services, picked, k, datetime.now(UTC), advance)
    out.update(model=services.llm.model if services.llm.enabled else None, seed=seed)
    _write(json_out, out)
    console.print_json(json.dumps({k2: v for k2, v in out.items() if k2 != "examples"}, default=str))
    return out


def _write(path: Path, out: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str))
    console.print(f"written to {path}")
