"""A catalog with nothing but ids and names (the generic events format, no kinds, no places, no
text index): profiles, recommendations and a chat that says what it could not do."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from core.db import open_store
from core.ingest import ingest_file
from core.models import Event
from core.settings import Settings
from domains import formats
from jobs.mine import mine_users
from retrieval.profile_store import latest_profile
from retrieval.types import RequestContext

WHEN = datetime(2024, 4, 15, 19, tzinfo=UTC)


def _events(path: Path) -> Path:
    rng = random.Random(1)
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "timestamp", "kind", "item_name"])
        for u in range(25):
            for d in range(40):
                if rng.random() < 0.6:
                    it = rng.randrange(40) if rng.random() < 0.5 else (u * 3 + d % 4) % 40
                    t = t0 + timedelta(days=d, hours=rng.choice([8, 12, 19, 22]))
                    w.writerow([f"u{u}", f"art{it}", t.isoformat(), "view", f"Artículo nº {it}"])
    return path


def test_a_catalog_of_bare_items_is_served_and_the_chat_says_what_it_cannot_do(tmp_path: Path) -> None:
    from agent.assembly import build_services

    s = Settings(
        env="test", data_dir=tmp_path / "data", llm={"enabled": False}, retrieval={"ranker": "heuristic"}
    )
    s.ensure_dirs()
    _, factory = open_store(s)
    assert ingest_file(_events(tmp_path / "events.csv"), factory, formats=formats()).inserted > 500
    mine_users(factory, data_dir=s.data_dir, workers=1)
    services = build_services(s, factory, traces=False, grounding=False)
    assert services.domain.name == "items"
    with factory() as sess:
        profile = latest_profile(sess, "u1")
    assert profile is not None and profile.text and "km" not in profile.text

    res = services.pipeline.run("u1", RequestContext(time=WHEN), k=5)
    assert len(res.items) == 5 and res.explanation is not None
    # every template explanation passed the checker (names with numbers in them are not claims)
    assert all(e.source == "template" and e.verdict.get("ok") for e in res.explanation.items.values())

    wish = services.chat.respond("u1", "something funny please", when=WHEN)
    assert wish.action == "recommend" and len(wish.items) == 5
    assert any("could not narrow" in n and "no kinds" in n for n in wish.notes)
    assert "could not narrow" in wish.reply
    avoid = services.chat.respond("u1", "no sports", wish.conversation_id, when=WHEN)
    assert any('could not leave out "sports"' in n for n in avoid.notes)
    second = avoid.items[1]["item_id"]
    rejected = services.chat.respond("u1", "not the second one", wish.conversation_id, when=WHEN)
    assert rejected.action == "reject" and rejected.reply.startswith("You turned down")
    assert rejected.constraints["avoid"] == ["sports"]  # "second one" is a pointer, not an exclusion
    with factory() as sess:
        fb = sess.scalars(select(Event.item_id).where(Event.kind == "feedback")).all()
    assert fb == [second]
