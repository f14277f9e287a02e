"""LLM reranking by scoring, not generation: one forward pass per candidate order.

The top-N candidates are labelled A, B, C…; the model is asked for one label, constrained to the
labels (by the labels' token ids, ``allowed_token_ids``; a ``structured_outputs`` choice where the
server cannot tokenize for us), and the log-probability of every label is read from
``top_logprobs`` (a LlamaRec-style verbalizer). Averaging over a few candidate orders counters
position bias. The output is, by construction, a permutation of the input: no item the retriever
did not propose can appear. Any failure (timeout, server down, open breaker) returns the feature
order, flagged ``features (llm unavailable)``.
"""

from __future__ import annotations

import logging
import math
import string
import time
from dataclasses import dataclass, field, replace
from typing import Any

from tenacity import retry, retry_if_exception_type, stop_after_attempt, stop_any, wait_exponential
from tenacity.stop import stop_base

from agent.llm.breaker import CircuitBreaker, CircuitOpenError, breaker_for
from agent.llm.client import make_openai_client
from agent.llm.label_tokens import LabelTokens
from core.metrics import FALLBACKS, LLM_CALLS
from core.settings import Settings
from mining import UserProfile
from prompts.loader import load_prompt
from retrieval.blend import blend_scores
from retrieval.item_text import place_description
from retrieval.types import Candidate, RequestContext

log = logging.getLogger(__name__)
LABELS = string.ascii_uppercase
FLOOR_LOGPROB = -30.0
FALLBACK_RANKER = "features (llm unavailable)"
MIN_CALL_S = 0.3  # below this much time left, no further call or retry is started


class _StopNear(stop_base):
    """Stop retrying once less than MIN_CALL_S is left before the request's deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: Any) -> bool:
        return self.deadline - time.monotonic() < MIN_CALL_S


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


def candidate_text(c: Candidate) -> str:
    """What the model sees of a candidate: its kind, its distance (else a landmark it is near) and
    the user's visits. Kept short (about ten tokens): prompt length is the rerank latency on a CPU."""
    # No bare ids and no coordinate cells ("area 40.7, -74.0"): they tell the model nothing and
    # cost tokens; the kind, a named landmark and the signals do.
    parts = [p for p in (c.name, c.category or ("unknown kind" if not c.name else None)) if p]
    where = place_description(c.lat, c.lon)
    if where.startswith("near ") and "distance_km" not in c.features:  # the distance says more
        parts.append(where.removeprefix("near "))
    visits = c.features.get("user_count_log")
    parts.append(f"{round(math.expm1(visits))} visits" if visits else "new")
    if "distance_km" in c.features:
        parts.append(f"{c.features['distance_km']:.1f} km")
    return ", ".join(parts)


def describe_context(ctx: RequestContext) -> tuple[str, str | None]:
    when = ctx.time.strftime("%A %H:%M")
    where = place_description(ctx.lat, ctx.lon) if ctx.lat is not None else None
    return when, where


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
        raise ValueError("the server returned no logprobs")
    found: dict[str, float] = {}
    for alt in content[0].top_logprobs or []:
        tok = alt.token.strip()
        if tok in labels and tok not in found:
            found[tok] = float(alt.logprob)
    chosen = content[0].token.strip()
    if chosen in labels and chosen not in found:
        found[chosen] = float(content[0].logprob)
    if not found:
        raise ValueError(f"no label among the top logprobs (answer {chosen!r})")
    return {lab: found.get(lab, FLOOR_LOGPROB) for lab in labels}


class LLMReranker:
    def __init__(
        self,
        settings: Settings,
        client: Any = None,
        breaker: CircuitBreaker | None = None,
        label_tokens: LabelTokens | None = None,
    ) -> None:
        self.settings = settings
        self.client = client or make_openai_client(settings)
        self.breaker = breaker or breaker_for(settings.resolved_llm_base_url)
        self.prompt = load_prompt("rerank")
        # With the real client, constrain by token ids (free); an injected client (tests, other
        # servers) gets the grammar unless a lookup is given too.
        self.label_tokens = label_tokens if label_tokens is not None or client else LabelTokens(settings)

    def constraint(self, labels: list[str], deadline: float | None = None) -> dict[str, Any]:
        """The request field that limits the one-token answer to the labels."""
        ids = self.label_tokens.ids_for(labels, deadline) if self.label_tokens else None
        if ids:
            return {"allowed_token_ids": ids}
        return {"structured_outputs": {"choice": labels}}

    def _score_once(
        self, messages: list[dict[str, str]], labels: list[str], deadline: float
    ) -> dict[str, float]:
        """One scoring call, retried with backoff while the request's deadline allows: each try
        gets the time left, so retries never stretch the deadline (a 10 s setting means 10 s)."""

        def left() -> float:
            return deadline - time.monotonic()

        @retry(
            stop=stop_any(stop_after_attempt(self.settings.llm.retries + 1), _StopNear(deadline)),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(Exception),
            reraise=True,
        )
        def call() -> Any:
            constraint = self.constraint(labels, deadline)  # may look up token ids: time counts
            if left() < MIN_CALL_S:
                raise TimeoutError("the request's LLM deadline has passed")
            return self.client.with_options(timeout=left()).chat.completions.create(
                model=self.settings.llm.model_name,
                messages=messages,
                max_tokens=1,
                temperature=0.0,
                logprobs=True,
                top_logprobs=20,
                extra_body=constraint,
            )

        return label_logprobs(call(), labels)

    def rerank(
        self,
        profile: UserProfile | None,
        ctx: RequestContext,
        ranked: list[Candidate],
        *,
        base_ranker: str | None = None,
        deadline: float | None = None,
    ) -> RerankOutcome:
        """``base_ranker`` names the feature ranker whose order this refines; ``deadline``
        (time.monotonic) bounds every call and retry."""
        deadline = deadline or time.monotonic() + self.settings.llm.timeout_s
        n = min(len(ranked), self.settings.llm.rerank_top_n, len(LABELS))
        base = base_ranker
        if not self.settings.llm.enabled or n < 2:
            reason = None if n < 2 else "llm disabled by settings"
            return RerankOutcome(
                list(ranked), FALLBACK_RANKER if reason else (base or "features"), None, None, reason
            )
        top, rest = ranked[:n], ranked[n:]
        labels = list(LABELS[:n])
        when, where = describe_context(ctx)
        scores = [0.0] * n
        per_order: list[list[float]] = []
        t0 = time.perf_counter()
        try:
            self.breaker.before_call()
            for order in orders(n, self.settings.llm.rerank_orders):
                cands = [
                    {"label": labels[pos], "text": candidate_text(top[i])} for pos, i in enumerate(order)
                ]
                messages = self.prompt.render(
                    profile_text=(profile.text if profile and profile.text else "No history yet."),
                    when=when,
                    where=where,
                    wish=ctx.text,
                    candidates=cands,
                    labels=labels,
                )
                lp = self._score_once(messages, labels, deadline)
                these = [0.0] * n
                for pos, i in enumerate(order):
                    these[i] = lp[labels[pos]]
                    scores[i] += lp[labels[pos]] / self.settings.llm.rerank_orders
                per_order.append(these)
            self.breaker.success()
            LLM_CALLS.labels("rerank", "ok").inc()
        except CircuitOpenError as exc:
            FALLBACKS.labels("rerank").inc()
            return RerankOutcome(list(ranked), FALLBACK_RANKER, None, self.prompt.id, str(exc))
        except Exception as exc:  # timeouts, connection errors, bad responses: degrade, never fail
            self.breaker.failure()
            LLM_CALLS.labels("rerank", "error").inc()
            FALLBACKS.labels("rerank").inc()
            log.warning("LLM rerank failed, serving the feature order: %s", exc)
            return RerankOutcome(
                list(ranked), FALLBACK_RANKER, None, self.prompt.id, f"{type(exc).__name__}: {exc}"[:300]
            )
        final = blend_scores([c.score for c in top], scores, self.settings.llm.blend_weight)
        blended = [
            replace(c, llm_score=round(scores[i], 4), final_score=float(final[i])) for i, c in enumerate(top)
        ]
        blended.sort(key=lambda c: -(c.final_score or 0.0))
        return RerankOutcome(
            blended + list(rest),
            f"llm({self.settings.llm.model_name})+{base or 'features'}",
            self.settings.llm.model_name,
            self.prompt.id,
            None,
            {"llm_ms": round((time.perf_counter() - t0) * 1000, 1)},
            per_order,
            orders(n, self.settings.llm.rerank_orders),
        )
