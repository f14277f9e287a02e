"""The films parts that read a person's words and facts: finding a film by title, the "like"
argument, what they rated lately, and the evidence that cites it (held by the checker)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from agent.explanations import Situation
from core import columns as C
from domains.evidence import RequestMoment
from domains.films import FILMS
from domains.films.chat import LIKE, liked_in
from domains.films.titles import TitleIndex
from mining import build_profile
from retrieval.types import Candidate

TITLES = [
    "Heat (1995)",
    "Matrix, The (1999)",
    "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)",
    "Heat (1986)",
    "Heathers (1989)",
]


@pytest.mark.parametrize(
    ("words", "found"),
    [
        ("Heat", 0),
        ("the matrix", 1),
        ("Matrix", 1),
        ("amélie", 2),
        ("Heathrs", 4),
        ("Star Wars", None),
        ("a", None),
    ],
)
def test_a_film_is_found_by_the_words_people_use(words: str, found: int | None) -> None:
    pop = np.array([100.0, 200.0, 50.0, 2.0, 10.0])  # of two "Heat"s the more rated one
    assert TitleIndex(TITLES).find(words, pop) == found


@pytest.mark.parametrize(
    ("message", "title", "wish_left"),
    [
        ("something like Heat but lighter", "Heat", "but lighter"),
        ("films similar to The Matrix, no horror", "The Matrix", ", no horror"),
        ("more like Amélie please", "Amélie", "please"),
        ("I would like a comedy", None, "I would like a comedy"),
    ],
)
def test_like_reads_the_film_and_leaves_the_rest_of_the_wish(
    message: str, title: str | None, wish_left: str
) -> None:
    assert liked_in(message) == title
    assert " ".join(LIKE.strip(message).split()) == wish_left
    assert LIKE.apply({}, LIKE.from_rules(message)) == ({"like": title} if title else {})


def _ratings() -> pd.DataFrame:
    t0 = pd.Timestamp("2015-03-01 20:00", tz="UTC")
    films = [("1", "Heat (1995)", "Action|Crime|Thriller", 4.5), ("2", "Up (2009)", "Animation|Comedy", 2.0),
             ("3", "Alien (1979)", "Horror|Sci-Fi", 5.0)] * 3  # fmt: skip
    rows = [
        {C.USER: "u", C.ITEM: f, C.ITEM_NAME: n, C.CATEGORY: g, C.RATING: r, C.KIND: "rating",
         C.TIME: t0 + pd.Timedelta(days=i), C.TZ_OFFSET: 0}
        for i, (f, n, g, r) in enumerate(films)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_what_they_rated_lately_is_a_fact_the_text_and_the_evidence_use() -> None:
    profile = build_profile(_ratings(), "u", plan=FILMS.mining_plan())
    recent = profile.fact("taste.recent")
    assert recent is not None
    assert [f["title"] for f in recent.value["films"][:3]] == ["Alien (1979)", "Up (2009)", "Heat (1995)"]
    assert "Lately rated Alien (1979) (5 stars)" in profile.text
    c = Candidate("9", name="Predator (1987)", category="Action", kinds=("Action", "Sci-Fi"), score=1.0)
    moment = RequestMoment(datetime(2015, 3, 10, 20, tzinfo=UTC), "3", "Horror")
    situation = Situation(
        moment, lambda i: {"3": "Alien (1979)"}.get(i), ("Action", "Sci-Fi", "Horror"), FILMS
    )
    ev = situation.evidence(profile, c)
    first = ev.evidence[0]
    assert (
        first.id == "taste.recent"
        and first.text == "You gave Alien (1979) 5 stars lately; this is Sci-Fi too."
    )
    ids = [f.id for f in profile.facts if f.sufficient]
    assert situation.check(f"{first.text} [taste.recent]", ev, ids).ok
    invented = situation.check(
        "You gave Alien (1979) 4 stars lately; this is Sci-Fi too. [taste.recent]", ev, ids
    )
    assert not invented.ok and any("4" in r for r in invented.reasons)


def test_a_cited_film_title_with_full_stops_is_not_counted_as_sentences() -> None:
    """ "Mr. & Mrs. Smith (2005)" named by the cited evidence is one name, not three sentence ends
    (the films template failed the checker as 'too long' on it), while an uncited number still fails."""
    from agent.llm.faithfulness import check_explanation
    from domains.evidence import Evidence, ItemEvidence

    said = "You gave Mr. & Mrs. Smith (2005) 4.5 stars lately; this is Action too."
    title = "Mr. & Mrs. Smith (2005)"
    recent = Evidence("taste.recent", said, frozenset({"4.5"}), kinds=frozenset({title, "Action"}),
                      topics=frozenset({"rated", "genre", "trend"}))  # fmt: skip
    genres = Evidence("taste.genres", "You rate Action films highly (3.1 stars on average over 55).",
                      frozenset({"3.1", "55"}), kinds=frozenset({"Action"}),
                      topics=frozenset({"rated", "genre"}))  # fmt: skip
    pe = ItemEvidence("7", "Film", "Action", 0, [recent, genres], own_kinds=frozenset({"action"}))
    text = f"{recent.text[:-1]} [taste.recent]. {genres.text[:-1]} [taste.genres]."
    ids = ["taste.recent", "taste.genres"]
    v = check_explanation(text, pe, ids, ["Action"], claims=FILMS.claims)
    assert v.ok, v.reasons
    bad = check_explanation(text.replace("55", "65"), pe, ids, ["Action"], claims=FILMS.claims)
    assert not bad.ok and any("65" in r for r in bad.reasons)


def test_a_rising_genre_is_said_in_words_its_evidence_backs() -> None:
    """The films wording of a rising interest said "of your ratings", a 'rated' claim the drift
    evidence does not carry: the films template failed the checker on ~1% of requests."""
    from mining.facts import Fact, UserProfile

    base = build_profile(_ratings(), "u", plan=FILMS.mining_plan())
    drift = Fact("drift.interests", "drift", "More Comedy lately (20% to 40%).",
                 {"basis": "genres", "emerging": [{"key": "Comedy", "early": 0.2, "recent": 0.4}],
                  "fading": []}, 9, 1.0)  # fmt: skip
    facts = [f for f in base.facts if f.id != "drift.interests"] + [drift]
    profile = UserProfile(base.user_id, facts, base.text, base.n_events, None)
    c = Candidate("8", name="Airplane! (1980)", category="Comedy", kinds=("Comedy",), score=1.0)
    moment = RequestMoment(datetime(2015, 3, 10, 20, tzinfo=UTC), "3", "Horror")
    situation = Situation(moment, lambda i: None, ("Comedy", "Horror"), FILMS)
    ev = situation.evidence(profile, c)
    (rising,) = [e for e in ev.evidence if e.id == "drift.interests"]
    assert "40%" in rising.text
    ids = [f.id for f in profile.facts if f.sufficient]
    verdict = situation.check(f"{rising.text[:-1]} [drift.interests].", ev, ids)
    assert verdict.ok, (rising.text, verdict.reasons)
