"""The MovieLens folder format (shared/datasets/movielens_small).

``chronotope ingest FOLDER --format movielens`` reads:

- ``movies.csv`` (movieId, title, genres): the catalog, every film, rated or not. The title keeps
  its year ("Toy Story (1995)"), which is also an attribute; genres become the film's kinds
  ("(no genres listed)" is none).
- ``ratings_train.csv`` (or ``ratings.csv``): userId, movieId, rating (0.5 to 5 stars), timestamp
  (unix seconds, UTC). A rating outside the scale, a film missing from movies.csv or an unreadable
  time rejects the row, with its line.
- ``tags_train.csv`` (or ``tags.csv``): userId, movieId, tag, timestamp: a person's words about a
  film, stored as ``tag`` events (optional: a folder without it loads with a warning).

The times carry no zone: the catalog is recorded as ``clock=UTC`` and profiles say so.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from core import columns as C
from core.errors import InvalidInputError
from core.ingest.formats import ITEM_COLUMNS, Parsed
from core.ingest.reading import (
    ATTRS,
    LINE,
    Cleaner,
    blank_to_na,
    finish,
    frame_from_rows,
    numeric,
    read_csv_rows,
    read_text,
)
from core.ingest.report import Rejection
from core.kinds import split_kinds

RATING_MIN, RATING_MAX = 0.5, 5.0
YEAR = re.compile(r"\((\d{4})(?:[–-]\d{0,4})?\)\s*$")
MOVIES = ("movieId", "title", "genres")
RATINGS = ("userId", "movieId", "rating", "timestamp")
TAGS = ("userId", "movieId", "tag", "timestamp")


def title_year(title: str) -> int | None:
    m = YEAR.search(title or "")
    return int(m.group(1)) if m else None


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _table(path: Path, columns: tuple[str, ...]) -> tuple[pd.DataFrame, list[Rejection], int]:
    header, rows, lines, rejections = read_csv_rows(read_text(path))
    missing = [c for c in columns if c not in header]
    if missing:
        raise InvalidInputError(f"{path}: needs columns {', '.join(missing)} (header: {header[:8]})")
    return frame_from_rows(header, rows, lines), rejections, len(rows) + len(rejections)


def _items(movies: pd.DataFrame, rejections: list[Rejection]) -> pd.DataFrame:
    df = pd.DataFrame(
        {LINE: movies[LINE], "item_id": blank_to_na(movies["movieId"]), "title": movies["title"]}
    )
    cl = Cleaner(df, rejections)
    cl.require_id("item_id", "movieId")
    df = movies.loc[cl.df.index]
    titles = df["title"].fillna("").astype(str).str.strip()
    kinds = [split_kinds(g) for g in df["genres"]]
    return pd.DataFrame(
        {
            "item_id": cl.df["item_id"].to_numpy(),
            "name": titles.where(titles != "", None).to_numpy(),
            "category": ["|".join(k) if k else None for k in kinds],
            "attributes": [{"year": y} if (y := title_year(t)) else {} for t in titles],
        },
        columns=ITEM_COLUMNS,
    )


def _events(raw: pd.DataFrame, kind: str, known: set[str], rejections: list[Rejection]) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            LINE: raw[LINE],
            C.USER: blank_to_na(raw["userId"]),
            C.ITEM: blank_to_na(raw["movieId"]),
            C.KIND: kind,
            C.RATING: numeric(raw["rating"]) if kind == "rating" else np.nan,
            C.TEXT: blank_to_na(raw["tag"]) if kind == "tag" else None,
            "_time_raw": raw["timestamp"],
        }
    )
    cl = Cleaner(df, rejections)
    cl.require_id(C.USER, "userId")
    cl.require_id(C.ITEM, "movieId")
    cl.reject(~cl.df[C.ITEM].isin(known), "a film that is not in movies.csv")
    if kind == "rating":
        r = cl.df[C.RATING]
        cl.reject(r.isna(), "missing or unreadable rating")
        cl.reject(
            (cl.df[C.RATING] < RATING_MIN) | (cl.df[C.RATING] > RATING_MAX),
            f"rating outside {RATING_MIN}..{RATING_MAX}",
        )
    else:
        cl.reject(cl.df[C.TEXT].isna(), "empty tag")
    secs = pd.to_numeric(cl.df["_time_raw"], errors="coerce")
    cl.times(pd.to_datetime(secs.where(secs > 0), unit="s", utc=True, errors="coerce"), "_time_raw")
    df = cl.df.drop(columns=["_time_raw"])
    df[C.TZ_OFFSET] = 0
    df[ATTRS] = None
    if kind == "tag":  # several tags of one film in one second are several events
        key = df[C.USER] + "|" + df[C.ITEM] + "|tag|" + df[C.TEXT].astype(str) + "|" + df[C.TIME].map(str)
        df[C.EVENT_ID] = key.map(lambda k: hashlib.blake2b(k.encode(), digest_size=12).hexdigest())
    return df


class MovieLens:
    name = "movielens"
    required: tuple[str, ...] = ()  # a folder, named with --format

    def parse(self, path: Path, zone: str | None) -> Parsed:
        folder = Path(path)
        if not folder.is_dir():
            raise InvalidInputError(
                f"{folder}: the movielens format reads a folder "
                "(movies.csv, ratings_train.csv, tags_train.csv)"
            )
        movies_path = _first(folder, ("movies.csv",))
        ratings_path = _first(folder, ("ratings_train.csv", "ratings.csv"))
        if movies_path is None or ratings_path is None:
            missing = [
                n for n, p in (("movies.csv", movies_path), ("ratings_train.csv", ratings_path)) if p is None
            ]
            raise InvalidInputError(f"{folder}: missing {', '.join(missing)}; nothing was stored")
        warnings: list[str] = []
        movies, movie_rej, _ = _table(movies_path, MOVIES)
        items = _items(movies, movie_rej)
        known = set(items["item_id"].astype(str))
        raw, rejections, n_read = _table(ratings_path, RATINGS)
        frames = [_events(raw, "rating", known, rejections)]
        tags_path = _first(folder, ("tags_train.csv", "tags.csv"))
        tag_rej: list[Rejection] = []
        if tags_path is None:
            warnings.append(f"{folder}: no tags_train.csv (or tags.csv): films load without people's tags")
        else:
            traw, tag_rej, n_tags = _table(tags_path, TAGS)
            frames.append(_events(traw, "tag", known, tag_rej))
            tag_rej = [Rejection(r.line, f"{tags_path.name}: {r.reason}") for r in tag_rej]
            n_read += n_tags
        events, rejections, duplicates = finish(pd.concat(frames, ignore_index=True), rejections + tag_rej)
        if movie_rej:
            first = movie_rej[0]
            warnings.append(
                f"movies.csv: {len(movie_rej)} row(s) rejected (first: line {first.line}, {first.reason})"
            )
        return Parsed(
            events,
            rejections,
            n_read,
            duplicates,
            self.name,
            items=items,
            meta={"domain": "films", "clock": "UTC"},
            warnings=warnings,
        )


MOVIELENS = MovieLens()
