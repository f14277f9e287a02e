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


@pytest.mark.parametrize(
    ("wish", "kind", "expected", "not_this"),
    [
        ("catch a flight", "Airline Shop", "Airport", "Bagel Shop"),
        ("groceries for dinner", "Grocery Store", "Food & Drink Shop", "Department Store"),
    ],
)
def test_a_kind_the_catalog_lacks_lands_where_the_wish_points(
    real_embedder: SentenceTransformerEmbedder, wish: str, kind: str, expected: str, not_this: str
) -> None:
    """By its name alone the made-up kind is nearest ``not_this``; with the wish beside it, the
    neighbour the person means wins."""
    g = CategoryGrounder(
        [*CATALOG, "Airport", "Bagel Shop", "Department Store", "Food & Drink Shop"], real_embedder
    )
    by_name = g.similarities([kind])[0]
    assert g.categories[int(by_name.argmax())] == not_this  # the trap is real
    got = g.ground_wish(wish, [kind])
    assert got and got[0].category == expected, got


def test_a_wish_that_names_no_kind_cannot_outvote_the_models_kind(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    g = CategoryGrounder([*CATALOG, "Vegetarian / Vegan Restaurant"], real_embedder)
    assert g.similarities(["eat"])[0].max() >= 0.7  # "eat" is close to "Food" by embedding...
    got = g.ground_wish("eat", ["Vegetarian / Vegan Restaurant"])
    assert [m.category for m in got] == ["Vegetarian / Vegan Restaurant"]  # ...but names no kind


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
