"""Ingesting a MovieLens folder: the catalog (titles, genres as kinds, year), ratings and tags as
events, every rejected row with its line and reason, nothing stored on a broken folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.catalog_meta import read_meta
from core.errors import InvalidInputError
from core.ingest import ingest_file
from core.models import Event, Item
from domains import formats
from tests.domains.conftest import movielens_folder, write_csv

MOVIES = [
    ("1", "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
    ("2", "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Comedy|Romance"),
    ("3", "Untitled project", "(no genres listed)"),
]
T0 = 964_982_703  # 2000-07-30 18:45:03 UTC


def _count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_a_folder_becomes_films_ratings_and_tags(
    tmp_path: Path, sqlite_session_factory: sessionmaker[Session]
) -> None:
    folder = movielens_folder(
        tmp_path / "ml",
        MOVIES,
        [
            ("7", "1", "4.5", T0),
            ("7", "2", "5", T0 + 60),
            ("7", "3", "6", T0 + 120),  # line 4: off the 0.5-5 scale
            ("7", "9", "3", T0 + 180),  # line 5: a film movies.csv lacks
            ("8", "2", "0", T0 + 240),  # line 6: below the scale
            ("8", "1", "3.5", "yesterday"),  # line 7: unreadable time
        ],
        [("7", "2", "whimsical", T0 + 61), ("7", "2", "Paris", T0 + 61)],
    )
    rep = ingest_file(folder, sqlite_session_factory, formats=formats(), fmt="movielens")
    assert rep.inserted == 4  # two ratings, two tags (same film, same second: two events)
    reasons = {r.line: r.reason for r in rep.rejections}
    assert set(reasons) == {4, 5, 6, 7}
    assert "rating outside" in reasons[4] and "rating outside" in reasons[6]
    assert "not in movies.csv" in reasons[5]
    with sqlite_session_factory() as s:
        amelie = s.get(Item, "2")
        assert amelie is not None
        assert amelie.name == MOVIES[1][1]  # non-ASCII kept as written
        assert amelie.category == "Comedy|Romance" and amelie.attributes == {"year": 2001}
        assert amelie.lat is None and amelie.lon is None
        untitled = s.get(Item, "3")
        assert untitled is not None and untitled.category is None and untitled.attributes == {}
        kinds = dict(s.execute(select(Event.kind, func.count()).group_by(Event.kind)).tuples().all())
        assert kinds == {"rating": 2, "tag": 2}
        assert read_meta(s) == {"domain": "films", "clock": "UTC"}
    assert _count(sqlite_session_factory, Item) == 3  # the whole catalog, rated or not
    again = ingest_file(folder, sqlite_session_factory, formats=formats(), fmt="movielens")
    assert again.inserted == 0 and again.already_present == 4


def test_a_folder_without_tags_loads_with_a_warning(
    tmp_path: Path, sqlite_session_factory: sessionmaker[Session]
) -> None:
    folder = movielens_folder(tmp_path / "ml", MOVIES, [("7", "1", "4", T0)])
    rep = ingest_file(folder, sqlite_session_factory, formats=formats(), fmt="movielens")
    assert rep.inserted == 1
    assert any("tags" in w for w in rep.warnings)


@pytest.mark.parametrize("broken", ["no_ratings", "no_movies", "a_file", "missing", "bad_header"])
def test_a_broken_folder_stores_nothing_and_says_why(
    tmp_path: Path, sqlite_session_factory: sessionmaker[Session], broken: str
) -> None:
    folder = tmp_path / "ml"
    if broken == "no_ratings":
        folder.mkdir()
        write_csv(folder / "movies.csv", ("movieId", "title", "genres"), MOVIES)
    elif broken == "no_movies":
        folder.mkdir()
        write_csv(
            folder / "ratings_train.csv", ("userId", "movieId", "rating", "timestamp"), [("7", "1", 4, T0)]
        )
    elif broken == "a_file":
        folder = write_csv(tmp_path / "ratings.csv", ("userId", "movieId", "rating", "timestamp"), [])
    elif broken == "bad_header":
        movielens_folder(folder, MOVIES, [])
        write_csv(folder / "ratings_train.csv", ("user", "film", "stars", "when"), [("7", "1", 4, T0)])
    with pytest.raises(InvalidInputError) as err:
        ingest_file(folder, sqlite_session_factory, formats=formats(), fmt="movielens")
    assert str(folder) in str(err.value) or folder.name in str(err.value)
    assert _count(sqlite_session_factory, Event) == 0 and _count(sqlite_session_factory, Item) == 0


def test_films_are_refused_by_a_store_of_places(
    tmp_path: Path, sqlite_session_factory: sessionmaker[Session]
) -> None:
    checkins = write_csv(
        tmp_path / "checkins.csv",
        ("user_id", "item_id", "timestamp", "lat", "lon", "category"),
        [("u1", "p1", "2012-04-03T18:00:00+00:00", 40.7, -74.0, "Bar")],
    )
    ingest_file(checkins, sqlite_session_factory, formats=formats())
    folder = movielens_folder(tmp_path / "ml", MOVIES, [("7", "1", "4", T0)])
    with pytest.raises(InvalidInputError, match="places"):
        ingest_file(folder, sqlite_session_factory, formats=formats(), fmt="movielens")
    assert _count(sqlite_session_factory, Event) == 1
