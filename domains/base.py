"""A domain: what only one kind of catalog knows, as one object the engine takes as a parameter.

The engine (mining, retrieval, the agent) is the same for every catalog; a domain says how its
items are called (``nouns``), which miners and feature groups apply (distance needs locations),
which candidate sources it offers, whether an item already consumed may be shown again, how an
item is named to a person and to the LLM, the evidence an explanation may cite about it, and the
chat's extra arguments (a distance for places, a decade for films). ``Domain`` itself is the
domain-neutral catalog ("items"): every method here is what a catalog without anything special
gets; ``domains/places`` and ``domains/films`` override what they know better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from core.nouns import ITEMS, Nouns
from domains.chat_args import ChatArgument
from domains.claims import NEUTRAL_CLAIMS, NEUTRAL_SUPERLATIVES, Claim, Superlative
from domains.evidence import ItemEvidence, Phrases, RequestMoment, Scene, usable_facts
from domains.naming import visit_count, visits_phrase
from domains.rules import NEUTRAL_RULES, item_evidence
from mining.plan import MiningPlan
from mining.profile import NEUTRAL_MINERS
from retrieval.behaviour_source import BEHAV_STAGE1, BehaviourEmbeddingGroup, BehaviourSource, kind_tokens
from retrieval.features import BEHAVIOUR, FeatureSet
from retrieval.plan import RetrievalPlan
from retrieval.sources import NEUTRAL_SOURCES
from retrieval.types import Candidate

# The neutral stage-1 blend (the places' blend without distance): what picks the pool.
NEUTRAL_STAGE1 = {
    "user_count_log": 1.0,
    "global_trans_prob": 1.4,
    "user_trans_prob": 1.0,
    "user_hour_affinity_share": 0.5,
    "covis_rank_score": 0.3,
    "user_knn_rank_score": 0.3,
    "popularity_log": 0.05,
    "behav_rank_score": BEHAV_STAGE1,
}
NOT_FOR_MODEL = ("user_knn_score", "user_knn_rank_score")


class Domain:
    name = "items"
    nouns: Nouns = ITEMS
    has_locations = False
    shows_consumed = True  # may an item the person already has be shown again by default
    clock = "local time"
    # the chat's extra arguments ("distance" for places, "decade" for films)
    chat_arguments: tuple[str, ...] = ()
    claims: tuple[Claim, ...] = NEUTRAL_CLAIMS
    superlatives: tuple[Superlative, ...] = NEUTRAL_SUPERLATIVES  # a chat reply's, checked per item
    phrases: Phrases = Phrases()
    # what the chat says to a message that asks for nothing
    invitation = "Tell me what you'd like and I'll suggest items that fit your habits."
    # the chat reply prompt's words: what the assistant suggests, how items are named, an example
    # When the LLM reranks by default (agent/llm/rerank_policy.py) and the dev figures behind it
    rerank_when: Literal["always", "with_text", "never"] = "never"
    rerank_evidence = "no dev study of the LLM rerank for a catalog of bare items"
    reply_role = "items that fit the person's habits"
    named_by = "name"
    example_item = "Item A"

    # -- mining -----------------------------------------------------------------------------

    def mining_plan(self, clock: str | None = None) -> MiningPlan:
        return MiningPlan(NEUTRAL_MINERS, (), self.nouns, False, clock or self.clock)

    # -- retrieval --------------------------------------------------------------------------

    def feature_set(self) -> FeatureSet:
        behaviour = BehaviourEmbeddingGroup(kind_tokens, self.name)
        return FeatureSet(
            BEHAVIOUR.columns + behaviour.columns,
            (BEHAVIOUR, behaviour),
            NEUTRAL_STAGE1,
            NOT_FOR_MODEL,
            self.name,
        )

    def retrieval_plan(self) -> RetrievalPlan:
        return RetrievalPlan(
            self.name,
            self.feature_set(),
            (*NEUTRAL_SOURCES, BehaviourSource()),
            (*(s.name for s in NEUTRAL_SOURCES), "behaviour"),
            shows_consumed=self.shows_consumed,
        )

    def training_size(self, history: Any, max_queries: int) -> int:
        """How many training queries ``train_ranker`` will try (for a progress bar): one set at
        the targets' own times and one "what next?" (one model per setting)."""
        return 2 * max_queries

    def train_ranker(self, history: Any, models_dir: Any, **kw: Any) -> Any:
        """Train the learned ranker on pseudo-targets from ``history`` and save it (retrieval.
        train_cli_support); returns (model, path)."""
        from retrieval.train_cli_support import train_and_save

        return train_and_save(history, models_dir, self.feature_set(), **kw)

    def request_args(self, **given: Any) -> dict[str, Any]:
        """The request's domain arguments from what a caller gave (API fields, chat arguments);
        what this domain does not read is dropped."""
        return {}

    # -- naming for a person and for the LLM -------------------------------------------------

    def kind_of(self, c: Candidate) -> str:
        """What kind of item it is, in words: its kind, else its name, else the item noun."""
        return c.category or c.name or self.nouns.item.capitalize()

    def title(self, c: Candidate) -> str:
        """The short name of a shown item in a sentence ("2. Taco Place", "2. Heat (1995)")."""
        if c.name and c.category and c.category.lower() not in c.name.lower():
            return f"{c.name} ({c.category})"
        return c.name or c.category or self.nouns.a().capitalize()

    def label(self, c: Candidate, person: Any = None) -> str:
        """How the item is named to this person (kind plus what it is to them)."""
        n = visit_count(c)
        what = self.title(c)
        return f"{what}, you have {self.nouns.had} it {visits_phrase(n)}" if n else f"{what}, new to you"

    def relation(self, c: Candidate, person: Any = None) -> str | None:
        """Where or what the item is for this person beyond its label (None: nothing to add)."""
        return None

    def details(self, c: Candidate) -> list[str]:
        """Plain attributes of a shown item for the chat's list."""
        n = visit_count(c)
        return [f"you have {self.nouns.had} it {visits_phrase(n)}" if n else "new to you"]

    def llm_text(self, c: Candidate) -> str:
        """What the LLM reads of a candidate (short: prompt length is rerank latency on a CPU)."""
        parts = [p for p in (c.name, ", ".join(c.kinds) or c.category) if p]
        n = visit_count(c)
        parts.append(f"{n} times before" if n else "new")
        return ", ".join(parts)

    def person(self, profile: Any) -> Any:
        """What the labels need from a profile, computed once per request (places: anchors)."""
        return None

    def describe_request(self, args: Mapping[str, Any]) -> str | None:
        """The request's whereabouts (or other domain context) in words for the LLM, or None."""
        return None

    def describe_args(self, args: Mapping[str, Any]) -> list[str]:
        """The request's domain arguments in words for a person ("within 2 km", "from the 1980s")."""
        return []

    def readable_profile(self, text: str, profile: Any, name_of: Any) -> str:
        """A profile text as the person reads it ("item 123" named)."""
        return name_items(text, self.nouns.item, name_of, f"one of your {self.nouns.items}")

    def plots(self) -> Sequence[str]:
        return ("rhythm",)

    def render_plot(self, name: str, events: Any, user_id: str) -> bytes:
        from mining.plots import render_plot

        return render_plot(name, events, user_id)

    # -- chat ---------------------------------------------------------------------------------

    def chat_args(self) -> tuple[ChatArgument, ...]:
        """The understanding form's extra fields (domains/chat_args.py)."""
        return ()

    def chat_examples(self) -> list[dict[str, str]]:
        """The understanding prompt's few-shot turns (user, assistant, ...)."""
        return examples_of("domains")

    # -- explanations -------------------------------------------------------------------------

    def scene(
        self, profile: Any, c: Candidate, moment: RequestMoment, name_of: Any, person: Any = None
    ) -> Scene:
        return Scene(usable_facts(profile), c, moment, name_of, self.nouns, person, self.phrases)

    def evidence(
        self, profile: Any, c: Candidate, moment: RequestMoment, name_of: Any, person: Any = None
    ) -> ItemEvidence:
        """The evidence linking ``c`` to this person at ``moment`` (domains/evidence.py);
        ``name_of`` names other items (the start of a route) by their kind or name."""
        return item_evidence(self.scene(profile, c, moment, name_of, person), NEUTRAL_RULES, self.kind_of(c))


@cache
def _examples(package: str) -> tuple[tuple[str, str], ...]:
    data = yaml.safe_load((resources.files(package) / "chat_examples.yaml").read_text(encoding="utf-8"))
    return tuple((str(m["role"]), str(m["content"]).strip()) for m in data["examples"])


def examples_of(package: str) -> list[dict[str, str]]:
    """A package's ``chat_examples.yaml``, as chat messages."""
    return [{"role": r, "content": c} for r, c in _examples(package)]


def name_items(text: str, noun: str, name_of: Any, unknown: str) -> str:
    """ "place 4128" -> "a Bar", "film 296" -> "Pulp Fiction (1994)": ids in a profile text named
    for a person (``name_of(id)`` -> a name, a kind, or None)."""
    import re

    def repl(m: re.Match[str]) -> str:
        name = name_of(m.group(1))
        if not name:
            return unknown
        return name

    return re.sub(rf"\b{re.escape(noun)} (\w+)", repl, text)
