"""Training the films ranker (placeholder recipe: the neutral pseudo-targets over the films'
feature set)."""

from __future__ import annotations

from typing import Any

from domains.films.retrieval import film_plan
from retrieval.train_cli_support import train_and_save


def train_film_ranker(history: Any, models_dir: Any, progress: Any = None) -> Any:
    return train_and_save(history, models_dir, film_plan().features, progress=progress)
