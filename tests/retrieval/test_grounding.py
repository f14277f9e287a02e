"""Grounding words in the catalog's categories with the real packaged MiniLM and FAISS."""

from __future__ import annotations

import pytest

from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.grounding import CategoryGrounder

pytestmark = pytest.mark.slow

CATALOG = [
    "Coffee Shop", "Café", "Bar", "Museum", "Art Museum", "Science Museum", "Park", "Scenic Lookout",
    "Italian Restaurant", "Pizza Place", "Thai Restaurant", "Indian Restaurant", "Chinese Restaurant",
    "Fast Food Restaurant", "Food Truck", "Food", "Gym / Fitness Center", "Mobile Phone Shop",
    "Electronics Store", "Library", "Bookstore", "Church", "Office", "Subway",
]  # fmt: skip


@pytest.fixture(scope="module")
def grounder(real_embedder: SentenceTransformerEmbedder) -> CategoryGrounder:
    return CategoryGrounder(CATALOG, real_embedder)


@pytest.mark.parametrize(
    ("wish", "kinds", "expected"),
    [
        ("thai food", [], "Thai Restaurant"),
        ("I need a phone charger", [], "Mobile Phone Shop"),
        ("dumplings", ["chinese restaurant"], "Chinese Restaurant"),  # the LLM's kind lifts it
        ("somewhere to watch the sunset", ["scenic lookout", "park"], "Scenic Lookout"),
        ("a quiet place to read", ["library"], "Library"),
    ],
)
def test_wishes_land_on_the_catalogs_categories(
    grounder: CategoryGrounder, wish: str, kinds: list[str], expected: str
) -> None:
    got = grounder.ground_wish(wish, kinds)
    assert got and got[0].category == expected, got
    assert all(0 < m.similarity <= 1.0 for m in got)
    assert len(got) <= 5


def test_a_vague_wish_restricts_nothing(grounder: CategoryGrounder) -> None:
    assert grounder.ground_wish("hmm") == []


def test_an_llm_kind_unrelated_to_the_wish_cannot_take_over(grounder: CategoryGrounder) -> None:
    got = grounder.ground_wish("thai food", ["subway"])
    assert got[0].category == "Thai Restaurant" and "Subway" not in [m.category for m in got]


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("no Italian", {"Italian Restaurant"}),
        ("no Italian food", {"Italian Restaurant"}),
        ("fast food", {"Fast Food Restaurant"}),
        ("coffee shops", {"Coffee Shop"}),
        ("museums", {"Museum", "Art Museum", "Science Museum"}),
    ],
)
def test_exclusions_are_narrow(grounder: CategoryGrounder, phrase: str, expected: set[str]) -> None:
    assert {m.category for m in grounder.ground_exclusion(phrase)} == expected
