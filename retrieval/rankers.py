"""Rankers over the feature matrix: the heuristic blend and a learned LightGBM LambdaRank model.

A trained model is saved as ``ranker-<hash>.txt`` (LightGBM text) with ``ranker-<hash>.json``
(features, metrics, training data summary); the product loads the newest.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.errors import InvalidInputError
from retrieval.features import FeatureSet

log = logging.getLogger(__name__)


NEXT_SUFFIX = "-next.lgb"  # the "what next?" model beside ranker-<version>.txt

# feature rows, labels, query sizes
Queries = tuple[np.ndarray, np.ndarray, np.ndarray]


class Ranker(Protocol):
    @property
    def name(self) -> str: ...

    def score(self, features: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class HeuristicRanker:
    features: FeatureSet
    name: str = "heuristic"

    def score(self, features: np.ndarray) -> np.ndarray:
        return self.features.heuristic(features)


@dataclass
class LearnedRanker:
    booster: Any  # lightgbm.Booster
    version: str
    features: FeatureSet  # the domain's columns, which ``score`` receives
    meta: dict[str, Any] = field(default_factory=dict)
    # "What next?" queries (query_time_known 0) go to this model when there is one: one model per
    # setting kept both settings' figures where one model of both lost the time-known one
    next_model: LearnedRanker | None = None

    @property
    def name(self) -> str:
        return f"learned-lgbm@{self.version}"

    def with_next(self, other: LearnedRanker) -> LearnedRanker:
        """This model for queries at a known time and ``other`` for "what next?" ones, versioned
        as the pair."""
        version = hashlib.sha256(f"{self.version}+{other.version}".encode()).hexdigest()[:10]
        meta = {**self.meta, "version": version, "next_model": {**other.meta}}
        return LearnedRanker(self.booster, version, self.features, meta, other)

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta.get("features") or self.booster.feature_name())

    def score(self, features: np.ndarray) -> np.ndarray:
        """``features`` has the columns of the domain's feature set. A model trained on another
        list gets its own columns by name; a name the code no longer computes is NaN (LightGBM's
        missing value), so an older model keeps working instead of failing."""
        if len(features) == 0:
            return np.zeros(0)
        col = self.features.col.get("query_time_known")
        if self.next_model is not None and col is not None:
            ahead = features[:, col] == 0
            if ahead.any():  # every row of one query shares the flag; split anyway if they do not
                out = np.empty(len(features))
                out[ahead] = self.next_model.score(features[ahead])
                if (~ahead).any():
                    out[~ahead] = self._known_only().score(features[~ahead])
                return out
        names = self.feature_names
        if names != list(self.features.columns):
            features = self.features.columns_of(names, features)
        # float64 in: LightGBM converts float32 to it anyway, and the conversion inside costs more
        return np.asarray(self.booster.predict(np.asarray(features, dtype=np.float64), num_threads=1))

    @classmethod
    def train(
        cls,
        fset: FeatureSet,
        train: Queries,
        val: Queries,
        *,
        rounds: int = 400,
        stop: int = 60,
        meta: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        on_round: Callable[[int], None] | None = None,
    ) -> LearnedRanker:
        """LambdaRank on ``train`` (feature rows, labels, query sizes), early-stopped on ``val``;
        ``params`` override the defaults below (a domain tunes its own); ``on_round(i)`` is told
        each boosting round (the fit is the long silent part of training)."""
        x, y, groups = train
        x_val, y_val, groups_val = val
        import lightgbm as lgb

        model_columns = fset.model_columns
        cols = [fset.col[f] for f in model_columns]
        x, x_val = x[:, cols], x_val[:, cols]
        settings = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_data_in_leaf": 50,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambdarank_truncation_level": 20,
            "num_threads": 2,
            "verbose": -1,
            "seed": 7,
            **(params or {}),
        }
        dtrain = lgb.Dataset(x, y, group=groups, feature_name=list(model_columns))
        dval = lgb.Dataset(x_val, y_val, group=groups_val, reference=dtrain)
        booster = lgb.train(
            settings,
            dtrain,
            num_boost_round=rounds,
            valid_sets=[dval],
            callbacks=[
                lgb.early_stopping(stop, verbose=False),
                *([lambda env: on_round(env.iteration + 1)] if on_round else []),
            ],
        )
        text = booster.model_to_string()
        version = hashlib.sha256(text.encode()).hexdigest()[:10]
        info = {
            "version": version,
            "features": list(model_columns),
            "domain": fset.domain,
            "trained_at": datetime.now(UTC).isoformat(),
            "best_iteration": booster.best_iteration,
            "best_score": {k: dict(v) for k, v in booster.best_score.items()},
            "train_rows": int(len(y)),
            "train_queries": int(len(groups)),
            **(meta or {}),
        }
        return cls(booster, version, fset, info)

    def _known_only(self) -> LearnedRanker:
        return LearnedRanker(self.booster, self.version, self.features, self.meta)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ranker-{self.version}.txt"
        meta = dict(self.meta)
        if self.next_model is not None:
            nxt = folder / f"ranker-{self.version}{NEXT_SUFFIX}"
            nb = self.next_model.booster
            nb.save_model(str(nxt), num_iteration=nb.best_iteration or None)
            meta["next_model"] = {**self.next_model.meta, "file": nxt.name}
        self.booster.save_model(str(path), num_iteration=self.booster.best_iteration or None)
        (folder / f"ranker-{self.version}.json").write_text(json.dumps(meta, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: Path, fset: FeatureSet) -> LearnedRanker:
        """A model file for ``fset``'s domain; one trained for another domain, or sharing fewer
        than half of its columns, is refused (it would rank on missing values)."""
        import lightgbm as lgb

        booster = lgb.Booster(model_file=str(path))
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if not meta.get("features"):
            meta["features"] = booster.feature_name()
        names = list(meta["features"])
        shared = sum(1 for n in names if n in fset.col)
        trained_for = meta.get("domain")
        if trained_for and fset.domain and trained_for != fset.domain:
            raise InvalidInputError(
                f"{path.name} ranks {trained_for}, not {fset.domain}: train one for this catalog with "
                "`chronotope rank train`"
            )
        if shared < len(names) / 2:
            raise InvalidInputError(
                f"{path.name} was trained on other features ({shared} of its {len(names)} columns are "
                "this domain's): train one for this catalog with `chronotope rank train`"
            )
        nxt = None
        if isinstance(meta.get("next_model"), dict) and meta["next_model"].get("file"):
            sub = meta["next_model"]
            nb = lgb.Booster(model_file=str(path.with_name(sub["file"])))
            nxt = cls(nb, sub.get("version", ""), fset, sub)
        return cls(booster, meta.get("version", path.stem.removeprefix("ranker-")), fset, meta, nxt)


def newest_model(folder: Path) -> Path | None:
    """The most recently trained model file (by its metadata's trained_at, else file time)."""
    models = models_newest_first(folder)
    return models[0] if models else None


def models_newest_first(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []

    def trained_at(p: Path) -> str:
        meta = p.with_suffix(".json")
        try:
            return str(json.loads(meta.read_text()).get("trained_at", ""))
        except (OSError, ValueError):
            return ""

    return sorted(folder.glob("ranker-*.txt"), key=lambda p: (trained_at(p), p.stat().st_mtime), reverse=True)


def load_ranker(
    name: str, models_dir: Path | None, fset: FeatureSet, refused: list[str] | None = None
) -> Ranker:
    """'heuristic', 'learned' (the newest model file that loads; heuristic if none), or a model
    file path. A model file that does not load (corrupt, half-written) is refused with a log
    line and the one before it serves; each refusal is appended to ``refused``."""
    if name == "heuristic":
        return HeuristicRanker(fset)
    if name == "learned":
        for path in models_newest_first(models_dir) if models_dir else []:
            try:
                return LearnedRanker.load(path, fset)
            except Exception as exc:  # LightGBM's own error type, a bad JSON beside it, I/O
                why = f"ranker model {path.name} refused ({str(exc).strip()[:160]})"
                log.error("%s; trying the one before it", why)
                if refused is not None:
                    refused.append(why)
        return HeuristicRanker(fset)
    p = Path(name)
    if p.exists():
        return LearnedRanker.load(p, fset)
    raise InvalidInputError(f"unknown ranker {name!r}: use heuristic, learned or a model file path")
