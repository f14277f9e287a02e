"""The films slice fixture of tests/domains, for the films evaluation tests."""

from tests.domains.conftest import real_films_slice

__all__ = ["real_films_slice"]
