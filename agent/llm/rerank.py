"""LLM reranking by scoring, not generation: one forward pass per candidate order.

The top-N candidates are labelled A, B, C…; the model is asked for one label, constrained to the
labels (by the labels' token ids, ``allowed_token_ids``; a ``structured_outputs`` choice where the
server cannot tokenize for us), and the log-probability of every label is read from
``top_logprobs`` (a LlamaRec-style verbalizer). Averaging over a few candidate orders counters
position bias. The output is, by construction, a permutation of the input: no item the retriever
did not propose can appear. Any failure (timeout, server down, open breaker) returns the feature
order, flagged ``features (llm unavailable)``. The candidates are described by the domain
(``Domain.llm_text``: a place's kind and distance, a film's title, year and genres).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, replace
from typing import Any

from agent.llm.gateway import LLMSession, UnusableAnswer
from agent.llm.label_tokens import LabelTokens
from core.clock import local_time
from core.settings import LLMSettings
from domains.base import Domain
from mining import UserProfile
from prompts.loader import load_prompt
from retrieval.blend import blend_scores
from retrieval.types import Candidate, RequestContext

LABELS = string.ascii_uppercase
FLOOR_LOGPROB = -30.0
FALLBACK_RANKER = "features (llm unavailable)"


@dataclass
class RerankOutcome:
    candidates: list[Candidate]
    ranker: str
    model: str | None
    prompt_version: str | None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Each candidate order's label log-probabilities, by candidate (the top-N as given): what the
    # position-bias check compares; ``llm_score`` is their mean.
    order_scores: list[list[float]] = field(default_factory=list)
    orders: list[list[int]] = field(default_factory=list)  # the candidates (top-N index) as listed


def orders(n: int, k: int) -> list[list[int]]:
    """k candidate orders: as given, reversed, then rotations (each position seen by different items)."""
    base = list(range(n))
    out = [base]
    if k >= 2:
        out.append(base[::-1])
    for r in range(1, k - 1):
        shift = (r * n) // (k - 1)
        out.append(base[shift:] + base[:shift])
    return out[:k]


def label_logprobs(response: Any, labels: list[str]) -> dict[str, float]:
    """Log-probabilities of each label from the first generated token's top_logprobs."""
    content = response.choices[0].logprobs.content if response.choices[0].logprobs else None
    if not content:
        raise UnusableAnswer("the server returned no logprobs")
    found: dict[str, float] = {}
    for alt in content[0].top_logprobs or []:
        tok = alt.token.strip()
        if tok in labels and tok not in found:
            found[tok] = float(alt.logprob)
    chosen = content[0].token.strip()
    if chosen in labels and chosen not in found:
        found[chosen] = float(content[0].logprob)
    if not found:
        raise UnusableAnswer(f"no label among the top logprobs (answer {chosen!r})")
    return {lab: found.get(lab, FLOOR_LOGPROB) for lab in labels}


class LLMReranker:
    def __init__(
        self, settings: LLMSettings, domain: Domain, label_tokens: LabelTokens | None = None
    ) -> None:
        self.settings = settings
        self.domain = domain
        self.prompt = load_prompt("rerank")
        # With the real server, constrain by token ids (free); without a lookup the grammar does it.
        self.label_tokens = label_tokens

    def constraint(self, labels: list[str], deadline: float | None = None) -> dict[str, Any]:
        """The request field that limits the one-token answer to the labels."""
        ids = self.label_tokens.ids_for(labels, deadline) if self.label_tokens else None
        if ids:
            return {"allowed_token_ids": ids}
        return {"structured_outputs": {"choice": labels}}

    def messages(
        self,
        profile: UserProfile | None,
        ctx: RequestContext,
        cands: list[dict[str, str]],
        utc_offset_min: int = 0,
    ) -> list[dict[str, str]]:
        nouns = self.domain.nouns
        return self.prompt.render(
            profile_text=(profile.text if profile and profile.text else "No history yet."),
            when=local_time(ctx.time, utc_offset_min).strftime("%A %H:%M"),
            where=self.domain.describe_request(ctx.args),
            wish=ctx.text,
            candidates=cands,
            labels=[c["label"] for c in cands],
            item=nouns.item,
        )

    def _scores(
        self,
        session: LLMSession,
        profile: UserProfile | None,
        ctx: RequestContext,
        top: list[Candidate],
        offset: int,
    ) -> tuple[list[float], list[list[float]]]:
        n = len(top)
        labels = list(LABELS[:n])
        k = self.settings.rerank_orders
        scores = [0.0] * n
        per_order: list[list[float]] = []
        for order in orders(n, k):
            cands = [
                {"label": labels[pos], "text": self.domain.llm_text(top[i])} for pos, i in enumerate(order)
            ]
            resp = session.complete(
                "rerank",
                self.messages(profile, ctx, cands, offset),
                max_tokens=1,
                temperature=0.0,
                logprobs=True,
                top_logprobs=20,
                extra_body=self.constraint(labels, session.deadline),
            )
            lp = label_logprobs(resp, labels)
            these = [0.0] * n
            for pos, i in enumerate(order):
                these[i] = lp[labels[pos]]
                scores[i] += lp[labels[pos]] / k
            per_order.append(these)
        return scores, per_order

    def rerank(
        self,
        session: LLMSession,
        profile: UserProfile | None,
        ctx: RequestContext,
        ranked: list[Candidate],
        *,
        base_ranker: str | None = None,
        utc_offset_min: int = 0,
    ) -> RerankOutcome:
        """``base_ranker`` names the feature ranker whose order this refines; ``utc_offset_min``:
        the person's (the prompt states the request's time on their clock); the session's deadline
        bounds every call and retry."""
        n = min(len(ranked), self.settings.rerank_top_n, len(LABELS))
        base = base_ranker or "features"
        if n < 2:
            return RerankOutcome(list(ranked), base, None, None)
        top, rest = ranked[:n], ranked[n:]
        got = session.run(
            "rerank",
            lambda s: self._scores(s, profile, ctx, top, utc_offset_min),
            lambda why: ([], []),
        )
        if got.source != "llm":
            return RerankOutcome(list(ranked), FALLBACK_RANKER, None, self.prompt.id, got.why)
        scores, per_order = got.value
        final = blend_scores([c.score for c in top], scores, self.settings.blend_weight)
        blended = [
            replace(c, llm_score=round(scores[i], 4), final_score=float(final[i])) for i, c in enumerate(top)
        ]
        blended.sort(key=lambda c: -(c.final_score or 0.0))
        return RerankOutcome(
            blended + list(rest),
            f"llm({self.settings.model_name})+{base}",
            self.settings.model_name,
            self.prompt.id,
            None,
            {"llm_ms": round(got.ms, 1)},
            per_order,
            orders(n, self.settings.rerank_orders),
        )
