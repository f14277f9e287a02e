"""Films fixtures: small MovieLens-format folders written by the tests, and a slice of the real
shared/datasets/movielens_small (its people with 20 to 120 ratings) for the end-to-end tests."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import DATASETS

MOVIELENS = DATASETS.parent / "movielens_small"


def write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def movielens_folder(
    folder: Path,
    movies: Iterable[tuple[str, str, str]],
    ratings: Iterable[tuple[str, str, object, object]],
    tags: Iterable[tuple[str, str, str, object]] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "movies.csv", ("movieId", "title", "genres"), movies)
    write_csv(folder / "ratings_train.csv", ("userId", "movieId", "rating", "timestamp"), ratings)
    if tags is not None:
        write_csv(folder / "tags_train.csv", ("userId", "movieId", "tag", "timestamp"), tags)
    return folder


@pytest.fixture(scope="session")
def real_films_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 real people (20-120 ratings each), every film of the catalog, their tags."""
    if not (MOVIELENS / "ratings_train.csv").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{MOVIELENS} is missing; CI must run the films tests on the real data")
        pytest.skip(f"{MOVIELENS} is missing")
    ratings = pd.read_csv(MOVIELENS / "ratings_train.csv", dtype=str)
    counts = ratings["userId"].value_counts()
    people = sorted(counts[(counts >= 20) & (counts <= 120)].index, key=int)[:40]
    folder = tmp_path_factory.mktemp("movielens_slice")
    ratings[ratings["userId"].isin(people)].to_csv(folder / "ratings_train.csv", index=False)
    tags = pd.read_csv(MOVIELENS / "tags_train.csv", dtype=str)
    tags[tags["userId"].isin(people)].to_csv(folder / "tags_train.csv", index=False)
    (folder / "movies.csv").write_bytes((MOVIELENS / "movies.csv").read_bytes())
    return folder
