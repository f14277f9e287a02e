"""``chronotope eval --format movielens``: the films protocol (evaluation/films.py) from the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from cli.common import console, progress, settings, trained_on_folder
from core.errors import InvalidInputError


def eval_films(
    history: Path,
    test: str,
    json_out: Path,
    ranker: str,
    catalog: str,
    sample: int | None,
    seed: int,
    pool: int,
) -> dict[str, Any]:
    from domains.films.retrieval import film_plan
    from evaluation.films import evaluate, load_split
    from retrieval.rankers import LearnedRanker, load_ranker

    if not history.is_dir():
        raise InvalidInputError(
            f"{history}: the movielens format reads a folder (movies.csv, ratings_train.csv)"
        )
    if sample is not None and sample <= 0:
        raise InvalidInputError("--sample must be a positive number")
    if catalog not in ("5core", "all"):
        raise InvalidInputError(f"--catalog {catalog!r}: 5core or all")
    split = load_split(history, test)
    console.print(
        f"{len(split.targets)} targets, {len(split.history):,} history events, "
        f"{len(split.core_items)} 5-core films"
    )
    fset = film_plan().features
    s = settings()
    if ranker in ("learned", "llm"):
        model = _trained_on(split.history, split.items)
    else:
        model = load_ranker(ranker, None, fset)
    reranker = None
    if ranker == "llm":
        from evaluation.films_llm import films_reranker

        reranker = (films_reranker(s), s.llm.rerank_top_n)
    n = min(sample or len(split.targets), len(split.targets))
    with progress(f"evaluate {model.name}", n) as advance:
        result = evaluate(
            split,
            model,
            catalog=catalog,
            pool_size=pool,
            sample=sample,
            seed=seed,
            progress=advance,
            reranker=reranker,
            blend_weight=s.llm.blend_weight,
        )
    if reranker is not None:
        result["llm_failures"] = reranker[0].failures["n"]  # type: ignore[attr-defined]
        result["llm_orders"] = s.llm.rerank_orders
    if isinstance(model, LearnedRanker):
        result["model"] = model.meta
    result["test"] = str(test)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=2, default=str))
    return result


def _trained_on(history: pd.DataFrame, items: pd.DataFrame) -> Any:
    """The films ranker trained on exactly this history (cached by its content: a ranker trained on
    the store's history may have seen the targets)."""
    from domains.films.retrieval import film_plan
    from domains.films.training import pseudo_targets, ratings_in_order, train_film_ranker
    from retrieval.rankers import LearnedRanker, newest_model

    folder = trained_on_folder(settings().models_dir, "films", history)
    found = newest_model(folder)
    if found is not None:
        console.print(f"films ranker trained on this history: {found}")
        return LearnedRanker.load(found, film_plan().features)
    n = len(pseudo_targets(ratings_in_order(history)))
    console.print("training the films ranker on this history (pseudo-targets, a few minutes)")
    with progress("training queries", n) as advance:
        model, path = train_film_ranker(history, folder, progress=advance, items=items)
    console.print(f"saved {path}")
    return model
