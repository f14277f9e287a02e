"""The chat evaluation's bank of everyday requests (evaluation/chat_wishes.yaml), loaded and checked.

Evaluation data only: nothing in it may reach a prompt or a rule of the assistant (the bank was
written separately from the prompts, and tests/agent checks the prompts' examples do not overlap).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from core import columns as C
from evaluation.dev_split import Query

FOLLOWUP_KINDS = (
    "closer",
    "new",
    "reject_first",
    "reject_second",
    "explain_first",
    "explain_second",
    "profile",
)


@dataclass(frozen=True)
class CategoryWishes:
    category: str
    accept: frozenset[str]
    wishes: tuple[str, ...]


@dataclass(frozen=True)
class Exclusion:
    text: str
    categories: frozenset[str]


@dataclass(frozen=True)
class Followup:
    text: str
    kind: str


@dataclass(frozen=True)
class Request:
    text: str
    kind: str
    accept: frozenset[str]
    split: str
    exclude: frozenset[str] = frozenset()
    lang: str = "en"


@dataclass
class WishBank:
    categories: dict[str, CategoryWishes]
    exclusions: list[Exclusion]
    followups: list[Followup]
    requests: list[Request] = field(default_factory=list)

    def problems(self, catalog: set[str]) -> list[str]:
        """Names that are not exact catalog categories (the bank is useless against another catalog)."""
        out = []
        for cw in self.categories.values():
            out += [f"categories.{cw.category}: {c!r}" for c in cw.accept | {cw.category} if c not in catalog]
        for e in self.exclusions:
            out += [f"exclusion {e.text!r}: {c!r}" for c in e.categories if c not in catalog]
        for r in self.requests:
            out += [f"request {r.text!r}: {c!r}" for c in r.accept | r.exclude if c not in catalog]
        return out


def default_bank_path() -> Path:
    return Path(str(resources.files("evaluation") / "chat_wishes.yaml"))


def load_bank(path: Path | None = None) -> WishBank:
    data: dict[str, Any] = yaml.safe_load((path or default_bank_path()).read_text(encoding="utf-8"))
    cats = {
        name: CategoryWishes(name, frozenset(v["accept"]) | {name}, tuple(v["wishes"]))
        for name, v in (data.get("categories") or {}).items()
    }
    exclusions = [Exclusion(e["text"], frozenset(e["categories"])) for e in data.get("exclusions") or []]
    followups = [Followup(f["text"], f["kind"]) for f in data.get("followups") or []]
    bad = [f.kind for f in followups if f.kind not in FOLLOWUP_KINDS]
    if bad:
        raise ValueError(f"unknown follow-up kinds {bad}; known: {FOLLOWUP_KINDS}")
    requests = [
        Request(
            r["text"],
            r["kind"],
            frozenset(r["accept"]),
            r.get("split", "dev"),
            frozenset(r.get("exclude") or ()),
            r.get("lang", "en"),
        )
        for r in data.get("requests") or []
    ]
    return WishBank(cats, exclusions, followups, requests)


def target_wishes(test: pd.DataFrame, bank: WishBank, seed: int = 0) -> Callable[[Query], str | None]:
    """A wish in everyday words for each dev target whose own category the bank covers (what a
    person asking for that kind of place might type), drawn per trajectory with ``seed``; None for
    the rest. The target's category is the request's meaning here, so only a reranker that reads
    the text may see it, never the features."""
    last = test.sort_values(C.TIME, kind="stable").groupby([C.USER, "trajectory_id"], sort=False).last()
    kind = {(str(u), str(t)): c for (u, t), c in last[C.CATEGORY].items()}

    def wish(q: Query) -> str | None:
        cw = bank.categories.get(str(kind.get((q.user_id, q.trajectory_id))))
        if cw is None or not cw.wishes:
            return None
        h = int.from_bytes(hashlib.sha256(f"{seed}:{q.trajectory_id}".encode()).digest()[:4], "big")
        return cw.wishes[h % len(cw.wishes)]

    return wish
