"""Films end to end on real MovieLens people: ingest, mine, recommend, filter by decade, chat,
and the support view, with the product's own parts (SQLite, the pipeline, the rules path of the
chat; the LLM is off here and its films prompts run in tests/integration)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db import open_store
from core.ingest import ingest_file
from core.models import Event
from core.settings import Settings
from domains import formats
from domains.films import FILMS
from jobs.mine import mine_users
from retrieval.profile_store import latest_profile, latest_profile_and_version
from retrieval.types import RequestContext

WHEN = datetime(2018, 10, 1, 20, 0, tzinfo=UTC)
YEAR = re.compile(r"\((\d{4})\)\s*$")


@pytest.fixture(scope="module")
def films(real_films_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A films store over the real slice, mined, with the serving core assembled (LLM off)."""
    from agent.assembly import build_services
    from retrieval.service import Retriever

    data = tmp_path_factory.mktemp("films_data")
    s = Settings(env="test", data_dir=data, llm={"enabled": False}, retrieval={"ranker": "heuristic"})
    s.ensure_dirs()
    _, factory = open_store(s)
    rep = ingest_file(real_films_slice, factory, formats=formats(), fmt="movielens")
    assert rep.inserted > 1000
    mine_users(factory, data_dir=data, workers=1)
    retriever = Retriever.load(s, factory, FILMS.retrieval_plan(), load_index=False, grounding=True)
    services = build_services(s, factory, retriever=retriever, traces=False)
    assert services.domain is FILMS  # resolved from what ingest recorded
    yield s, factory, services
    services.close()


def _person(films: Any) -> str:
    _, factory, _ = films
    with factory() as s:
        return str(s.scalars(select(Event.user_id).order_by(Event.user_id)).first())


def _rated(films: Any, user: str) -> set[str]:
    _, factory, _ = films
    with factory() as s:
        return set(s.scalars(select(Event.item_id).where(Event.user_id == user, Event.kind == "rating")))


def test_profiles_are_about_films_not_places(films: Any) -> None:
    _, factory, _ = films
    with factory() as s:
        profile = latest_profile(s, _person(films))
    assert profile is not None
    ids = {f.id for f in profile.facts}
    assert {"taste.ratings", "taste.genres", "data.summary"} <= ids
    assert not any(i.startswith(("spatial.", "geo.")) for i in ids)
    assert " km" not in profile.text and "place" not in profile.text.lower()
    assert "UTC" in profile.text  # MovieLens times carry no zone: the profile says whose clock it is


def test_a_recommendation_is_films_not_yet_rated_with_reasons_from_the_facts(films: Any) -> None:
    _, factory, services = films
    user = _person(films)
    res = services.pipeline.run(user, RequestContext(time=WHEN), k=10)
    assert len(res.items) == 10 and res.ranker == "heuristic"
    assert not {c.item_id for c in res.items} & _rated(films, user)
    for c in res.items:
        assert c.kinds and c.attrs.get("year") == int(YEAR.search(c.name or "").group(1))  # type: ignore[union-attr]
    assert res.explanation is not None
    with factory() as s:
        profile, version = latest_profile_and_version(s, user)
        trace = services.records.trace(s, res.recommendation_id)
    assert profile is not None
    fact_ids = {f.id for f in profile.facts}
    for e in res.explanation.items.values():
        cited = set(re.findall(r"\[([a-z_]+\.[a-z_.0-9]+)\]", e.text))
        assert cited and {c for c in cited if not c.startswith("item.")} <= fact_ids
    # the support view: what was served and why
    assert [c["item_id"] for c in trace.candidates[:10]] == [c.item_id for c in res.items]
    assert trace.profile_version == version and trace.facts


def test_the_decade_filter_and_an_empty_answer_that_says_why(films: Any) -> None:
    _, _, services = films
    user = _person(films)
    res = services.pipeline.run(user, RequestContext(time=WHEN, args={"decade": 1980}), k=10)
    assert res.items and all(1980 <= (c.attrs.get("year") or 0) < 1990 for c in res.items)
    none = services.pipeline.run(user, RequestContext(time=WHEN, args={"decade": 1890}), k=10)
    assert none.items == [] and none.emptied_by and "decade" in str(none.emptied_by)
    assert any("1890" in n for n in none.notes)


def test_the_chat_reads_a_genre_and_a_decade_and_writes_nothing_unsaid(films: Any) -> None:
    _, factory, services = films
    user = _person(films)
    first = services.chat.respond(user, "a comedy from the 90s please", when=WHEN)
    assert first.action == "recommend" and first.understood_by == "rules" and first.items
    assert first.constraints["args"].get("decade") == 1990
    for item in first.items:
        assert "Comedy" in item["kinds"] and 1990 <= item["attributes"]["year"] < 2000
    assert not {i["item_id"] for i in first.items} & _rated(films, user)
    no_horror = services.chat.respond(user, "no horror", first.conversation_id, when=WHEN)
    assert no_horror.action == "recommend"
    assert all("Horror" not in i["kinds"] for i in no_horror.items)
    with factory() as s:  # "no horror" narrows the search; it rejects no film
        assert not s.scalars(select(Event).where(Event.user_id == user, Event.kind == "feedback")).all()
    shown = no_horror.items[0]["item_id"]
    rejected = services.chat.respond(user, "not the first one, I hated it", first.conversation_id, when=WHEN)
    assert rejected.action == "reject" and shown not in {i["item_id"] for i in rejected.items}
    with factory() as s:
        fb = s.scalars(select(Event).where(Event.user_id == user, Event.kind == "feedback")).all()
        assert [e.item_id for e in fb] == [shown]


def test_a_wish_like_a_film_reads_what_people_rate_after_it(films: Any) -> None:
    _, _, services = films
    user = _person(films)
    turn = services.chat.respond(user, "something like toy story but lighter", when=WHEN)
    assert turn.action == "recommend" and turn.constraints["args"].get("like", "").lower() == "toy story"
    assert any(n.startswith("like Toy Story (1995)") for n in turn.notes)
    assert "Toy Story (1995)" in turn.reply  # the reply says which film it read
    shown = {i["item_id"] for i in turn.items}
    assert "1" not in shown and not shown & _rated(films, user)
    unknown = services.chat.respond(user, "films similar to Zzyzx Qwerty", when=WHEN)
    assert any('no film called "Zzyzx Qwerty"' in n for n in unknown.notes) and unknown.items


def test_the_api_serves_films(films: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.app import create_app
    from api.auth import create_key

    s, factory, _ = films
    user = _person(films)
    with factory() as sess:
        key = create_key(sess, "user", user)
        sess.commit()
    monkeypatch.setenv("CHRONOTOPE_API__RATE_LIMIT_PER_S", "0")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(s, use_llm=False)) as c:
        words = c.get("/v1/catalog").json()  # what the web page names things by
        assert (
            words["domain"] == "films"
            and words["items"] == "films"
            and words["arguments"] == ["decade", "like"]
        )
        context = {"time": WHEN.isoformat(), "decade": 1990}
        r = c.post("/v1/recommendations", json={"user_id": user, "k": 5, "context": context}, headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) == 5
        for it in body["items"]:
            assert it["kinds"] and 1990 <= it["year"] < 2000 and it["lat"] is None
        assert not {it["item_id"] for it in body["items"]} & _rated(films, user)
        far = {"time": WHEN.isoformat(), "max_distance_km": 2}
        r = c.post("/v1/recommendations", json={"user_id": user, "context": far}, headers=auth)
        assert r.status_code == 400 and "max_distance_km" in r.text


def test_the_behaviour_model_is_trained_saved_and_swapped_in_by_a_rebuild(films: Any) -> None:
    """Films get the behaviour source too: not served until `chronotope index` trains the model,
    then a state rebuild picks it up and it finds films the person has not rated."""
    from core.events_frame import events_frame
    from retrieval.behaviour_source import train_for
    from retrieval.catalog import load_catalog
    from retrieval.serving_state import behaviour

    s, factory, services = films
    retriever = services.retriever
    before = retriever.status()
    assert before["behaviour_model"] is None and "chronotope index" in before["behaviour_error"]
    with factory() as sess:
        events, catalog = behaviour(events_frame(sess)), load_catalog(sess)
    model, path = train_for(FILMS.feature_set(), events, catalog, s.models_dir)
    assert path.parent == s.models_dir / "behaviour" and model.meta["domain"] == "films"
    retriever.reload(factory)
    assert retriever.status()["behaviour_model"]["version"] == model.version
    user = _person(films)
    res = services.pipeline.run(user, RequestContext(time=WHEN), k=10)
    with factory() as sess:  # the trace names the sources of every candidate
        trace = services.records.trace(sess, res.recommendation_id)
    found = [c for c in trace.candidates if "behaviour" in c.get("sources", [])]
    assert found and not {c["item_id"] for c in found} & _rated(films, user)
