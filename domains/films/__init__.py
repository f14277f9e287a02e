"""The films domain: people rating films (MovieLens), the second catalog the engine serves.

What only films have: titles with a year, several genres each, ratings with a value (half a star
is a signal against, not for), people's tags, and no locations at all. Mining reads how a person
rates, the genres and decades they rate highly and their tags' aspects, and counts rhythm in
sittings (people rate in bursts); retrieval never shows a film already rated and adds what suits
sequences of films; people read "Heat (1995)" with its genres; explanations cite film facts; the
chat understands a decade ("something from the 80s").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.nouns import Nouns
from domains.base import Domain, examples_of
from domains.chat_args import ChatArgument
from domains.claims import NEUTRAL_CLAIMS, Claim, _p
from domains.evidence import ItemEvidence, Phrases, RequestMoment
from domains.films.chat import DECADE, LIKE
from domains.films.evidence import FILM_RULES, film_evidence
from domains.films.mining import FILM_SENTENCES, rating_facts, recent_facts, tag_facts
from domains.films.retrieval import film_plan
from mining.drift import drift_facts
from mining.habits import habit_facts
from mining.plan import MiningPlan
from mining.rhythm import rhythm_facts
from mining.timeseries import timeseries_facts
from retrieval.features import FeatureSet
from retrieval.plan import RetrievalPlan
from retrieval.types import Candidate

FILM_PHRASES = Phrases(
    had="You rated it before.",
    route="You often go from {origin} to it ({count} times).",
    own_route="You have gone straight from your latest film{frm} to it {times}.",
    slot_item="On {label} you often come back to this film ({k} of {n} ratings).",
    slot_kind="On {label} you mostly rate {kind} films.",
    next_kind="After {after} (your latest film), {kind} films are a usual next one.",
    # "of your ratings" would be a 'rated' claim (FILM_CLAIMS) that drift evidence does not carry
    rising="Lately you rate {what} more (up from {early}% to {recent}% of all you rate).",
    this_item="this film",
    usual_hour="Most of your ratings of it were around this time of day.",
    others_next="People who rated {last} often rate this one next.",
    similar="People with similar tastes also rated this one.",
    new="You have not rated it yet.",
)
FILM_CLAIMS: tuple[Claim, ...] = (
    *NEUTRAL_CLAIMS,
    ("rated", _p(r"you (?:rated|gave|loved|liked|enjoyed|watched|saw)|your (?:ratings?|favou?rites?)")),
    ("genre", _p(r"your (?:favou?rite|top|best[- ]rated) genres?|genres? you (?:rate|like|love)")),
)


class FilmsDomain(Domain):
    name = "films"
    nouns = Nouns("film", "films", "rating", "ratings", "rated", "genre", "genres", "", "of")
    has_locations = False
    shows_consumed = False  # a film already rated is never shown again
    clock = "UTC"  # MovieLens times carry no zone
    chat_arguments = ("decade",)
    claims = FILM_CLAIMS
    phrases = FILM_PHRASES
    # docs/measurements.md#films (the LLM rerank study on 300 dev targets)
    rerank_when = "never"
    rerank_evidence = (
        "on 300 MovieLens dev targets (the packaged 0.5B, 4 candidate orders) the LLM blend's MRR gain "
        "over the learned ranker was +0.004 (95% CI -0.002 to +0.010), +0.003 (-0.002 to +0.009) with "
        "the letter prior removed, and -0.008 (-0.026 to +0.011) as a LambdaRank feature: not shown "
        "to help; docs/measurements.md#films"
    )
    reply_role = "films to watch"
    named_by = "title"
    example_item = "Heat (1995)"
    invitation = (
        "Tell me what you're in the mood for (a genre, a decade, something like a film you liked) and "
        "I'll suggest films that fit your taste."
    )

    def mining_plan(self, clock: str | None = None) -> MiningPlan:
        miners = (
            rhythm_facts,
            timeseries_facts,
            habit_facts,
            drift_facts,
            rating_facts,
            recent_facts,
            tag_facts,
        )
        return MiningPlan(miners, FILM_SENTENCES, self.nouns, True, clock or self.clock)

    def feature_set(self) -> FeatureSet:
        return film_plan().features

    def retrieval_plan(self) -> RetrievalPlan:
        return film_plan()

    def training_size(self, history: Any, max_queries: int) -> int:
        from domains.films.training import pseudo_targets, ratings_in_order

        return len(pseudo_targets(ratings_in_order(history)))

    def train_ranker(self, history: Any, models_dir: Any, **kw: Any) -> Any:
        """Films train on each person's latest ratings at their own time (domains/films/training.py):
        the places options ``weeks`` and ``max_queries`` do not apply."""
        from domains.films.training import train_film_ranker

        return train_film_ranker(
            history,
            models_dir,
            progress=kw.get("progress"),
            feedback=kw.get("feedback"),
            fit_progress=kw.get("fit_progress"),
        )

    def request_args(self, **given: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if given.get("decade") is not None:
            out["decade"] = int(given["decade"])
        if given.get("like"):
            out["like"] = str(given["like"])[:120]
        return out

    # -- naming -------------------------------------------------------------------------------

    def title(self, c: Candidate) -> str:
        return c.name or f"Film {c.item_id}"

    def label(self, c: Candidate, person: Any = None) -> str:
        return self.title(c)

    def details(self, c: Candidate) -> list[str]:
        out = [", ".join(c.kinds)] if c.kinds else []
        return out + ["new to you"]

    def llm_text(self, c: Candidate) -> str:
        return f"{self.title(c)}, {' / '.join(c.kinds) or 'no genre listed'}"

    def describe_args(self, args: Mapping[str, Any]) -> list[str]:
        out = [f"like {args['like']}"] if args.get("like") else []
        return out + ([f"from the {args['decade']}s"] if args.get("decade") else [])

    def describe_request(self, args: Mapping[str, Any]) -> str | None:
        words = self.describe_args(args)
        return f"a film {' and '.join(words)}" if words else None

    def chat_args(self) -> tuple[ChatArgument, ...]:
        return (DECADE, LIKE)

    def chat_examples(self) -> list[dict[str, str]]:
        return examples_of("domains.films")

    def evidence(
        self, profile: Any, c: Candidate, moment: RequestMoment, name_of: Any, person: Any = None
    ) -> ItemEvidence:
        return film_evidence(self.scene(profile, c, moment, name_of, person), self.kind_of(c), FILM_RULES)


FILMS = FilmsDomain()
__all__ = ["FILMS", "FilmsDomain"]
