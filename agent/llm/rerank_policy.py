"""When the LLM reranks a request's places: a setting, decided by the dev split's intervals.

``chronotope eval --ranker llm`` compares the LLM blend with the learned ranker alone on the same
targets, with a paired bootstrap interval of the MRR difference per slice (docs/measurements.md,
"The LLM rerank on its merits"). Where the interval does not say the LLM helps, it stays out of
the ranking and the response and the trace say why; it still writes explanations and the chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from retrieval.types import RequestContext

RerankWhen = Literal["always", "with_text", "never"]

# A domain states its default and the dev figures behind it (Domain.rerank_when, .rerank_evidence),
# quoted in every decision so support can read it.


@dataclass(frozen=True)
class RerankDecision:
    use: bool
    why: str

    def to_dict(self) -> dict[str, object]:
        return {"used": self.use, "why": self.why}


def decide(when: RerankWhen, ctx: RequestContext, evidence: str = "") -> RerankDecision:
    """``evidence``: why the domain's default is what it is (the dev split's figures)."""
    if when == "always":
        return RerankDecision(True, "llm.rerank_when=always: every request is reranked")
    if when == "with_text":
        if ctx.text and ctx.text.strip():
            return RerankDecision(
                True, "llm.rerank_when=with_text and the request carries text the feature ranker cannot read"
            )
        return RerankDecision(False, "llm.rerank_when=with_text and the request carries no text")
    return RerankDecision(
        False,
        f"llm.rerank_when=never{f': {evidence}' if evidence else ''}; the learned ranker's order is served",
    )
