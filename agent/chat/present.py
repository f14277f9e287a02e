"""How a tool's result is put into words: the material the LLM writes the reply from, and the
template reply (the rules' answer) built from exactly the same material.

Both only ever mention the items the tool returned, by position and label (the domain names them:
"Taco Place", "Heat (1995)"); reasons come from the template explanations, which cite the user's
facts (the citations stay in the trace, not the text).
"""

from __future__ import annotations

from typing import Any

from agent.explanations import reason_text
from domains.base import Domain
from retrieval.types import Candidate


def item_out(c: Candidate, result: Any, domain: Domain) -> dict[str, Any]:
    """A shown item as the chat's response lists it."""
    exp = result.explanation.items.get(c.item_id) if result.explanation else None
    return {
        "item_id": c.item_id,
        "name": c.name,
        "category": c.category,
        "kinds": list(c.kinds),
        "attributes": dict(c.attrs),
        "label": domain.title(c),
        "details": domain.details(c) + ([result.where[c.item_id]] if c.item_id in result.where else []),
        "score": c.final_score if c.final_score is not None else c.score,
        "sources": c.sources,
        "explanation": reason_text(exp) if exp else None,  # the cited facts are in fact_ids
        "fact_ids": exp.fact_ids if exp else [],
    }


def item_line(n: int, c: Candidate, explanation: Any, domain: Domain) -> str:
    """One result for the model: label, plain facts and the first reason only (short on purpose:
    a small model copies long material instead of answering)."""
    reason = reason_text(explanation).split(". ")[0].rstrip(".")
    return f"{n}. {domain.title(c)}: {', '.join(domain.details(c))}" + (
        f"; {reason[0].lower()}{reason[1:]}." if reason else "."
    )


RESULTS_FOR_MODEL = 3  # the rest are listed under the reply; the model need not see them


def results_for_items(
    items: list[Candidate], explanations: dict[str, Any], search: str, domain: Domain
) -> str:
    nouns = domain.nouns
    if not items:
        return f"No {nouns.item} matched the search ({search})."
    lines = [
        item_line(n, c, explanations.get(c.item_id), domain)
        for n, c in enumerate(items[:RESULTS_FOR_MODEL], start=1)
    ]
    return f"{nouns.items.capitalize()} found, best first:\n" + "\n".join(lines) + f"\nThe search: {search}."


def listing(items: list[dict[str, Any]]) -> str:
    """The shown places as a numbered list, rendered from the items (not written by the model):
    what a text-only client shows under an LLM-written reply."""
    return "\n".join(
        f"{n}. {i['label']}" + (f" ({', '.join(i['details'])})" if i.get("details") else "")
        for n, i in enumerate(items, start=1)
    )


def template_for_items(
    items: list[Candidate], explanations: dict[str, Any], search: str, domain: Domain, llm_note: str | None
) -> str:
    if not items:
        return "I found nothing that fits all of that. Try relaxing one part of the search."
    head = "Here are my suggestions" + (f" ({search})" if search != "nothing specific yet" else "")
    lines = []
    for n, c in enumerate(items, start=1):
        reason = reason_text(explanations.get(c.item_id))
        lines.append(
            f"{n}. {domain.title(c)} ({', '.join(domain.details(c))})" + (f" — {reason}" if reason else "")
        )
    tail = f"\n({llm_note})" if llm_note else ""
    return head + ":\n" + "\n".join(lines) + tail


RECOMMEND_TASK = (
    "In one or two short sentences (under 40 words), say what you found and why the first {item} fits, "
    'speaking to the person as "you". Do not list the {items}: they are shown under your answer.'
)
NOTHING_TASK = "Tell them nothing matched and suggest relaxing one part of the search."
EXPLAIN_TASK = (
    "Explain to them, in one to three sentences, why it was suggested, using only the reasons above."
)
PROFILE_TASK = "Summarise this for them in two or three friendly sentences, saying only what it says."
