"""How a tool's result is put into words: the material the LLM writes the reply from, and the
template reply (the rules' answer) built from exactly the same material.

Both only ever mention the items the tool returned, by position and label; reasons come from the
template explanations, which cite the user's facts (the citations stay in the trace, not the text).
"""

from __future__ import annotations

import math
from typing import Any

from agent.chat.state import ChatState
from agent.llm.explain import reason_text
from retrieval.types import Candidate


def item_label(c: Candidate | Any) -> str:
    """The short name of a shown place in a sentence ("2. Taco Place"): its name and kind, never
    a bare id (the data may have no venue names)."""
    name = getattr(c, "name", None)
    category = getattr(c, "category", None)
    if name and category and category.lower() not in name.lower():
        return f"{name} ({category})"
    return name or category or "A place"


def item_facts(c: Candidate) -> list[str]:
    """Plain attributes of a shown item: how far, how familiar."""
    out = []
    if "distance_km" in c.features:
        out.append(f"{c.features['distance_km']:.1f} km away")
    visits = c.features.get("user_count_log")
    n = round(math.expm1(visits)) if visits else 0
    out.append(f"you have been here {'once' if n == 1 else f'{n} times'}" if n else "new to you")
    return out


def item_line(n: int, c: Candidate, explanation: Any) -> str:
    """One result for the model: label, plain facts and the first reason only (short on purpose:
    a small model copies long material instead of answering)."""
    reason = reason_text(explanation).split(". ")[0].rstrip(".")
    return f"{n}. {item_label(c)}: {', '.join(item_facts(c))}" + (
        f"; {reason[0].lower()}{reason[1:]}." if reason else "."
    )


RESULTS_FOR_MODEL = 3  # the rest are listed under the reply; the model need not see them


def results_for_items(items: list[Candidate], explanations: dict[str, Any], state: ChatState) -> str:
    if not items:
        return f"No place matched the search ({state.summary(kinds=False)})."
    lines = [
        item_line(n, c, explanations.get(c.item_id)) for n, c in enumerate(items[:RESULTS_FOR_MODEL], start=1)
    ]
    return "Places found, best first:\n" + "\n".join(lines) + f"\nThe search: {state.summary(kinds=False)}."


def listing(items: list[dict[str, Any]]) -> str:
    """The shown places as a numbered list, rendered from the items (not written by the model):
    what a text-only client shows under an LLM-written reply."""
    return "\n".join(
        f"{n}. {i['label']}" + (f" ({', '.join(i['details'])})" if i.get("details") else "")
        for n, i in enumerate(items, start=1)
    )


def template_for_items(
    items: list[Candidate], explanations: dict[str, Any], state: ChatState, llm_note: str | None
) -> str:
    if not items:
        return "I found nothing that fits all of that. Try relaxing a constraint (e.g. a larger distance)."
    search = state.summary(kinds=False)
    head = "Here are my suggestions" + (f" ({search})" if search != "nothing specific yet" else "")
    lines = []
    for n, c in enumerate(items, start=1):
        reason = reason_text(explanations.get(c.item_id))
        lines.append(
            f"{n}. {item_label(c)} ({', '.join(item_facts(c))})" + (f" — {reason}" if reason else "")
        )
    tail = f"\n({llm_note})" if llm_note else ""
    return head + ":\n" + "\n".join(lines) + tail


RECOMMEND_TASK = (
    "In one or two short sentences (under 40 words), tell them what you found and why the first place "
    "suits them. Do not list the places: they are shown under your answer."
)
NOTHING_TASK = "Tell them nothing matched and suggest relaxing one part of the search."
EXPLAIN_TASK = (
    "Explain to them, in one to three sentences, why it was suggested, using only the reasons above."
)
PROFILE_TASK = "Summarise this for them in two or three friendly sentences, saying only what it says."
CHAT_TASK = (
    "It is not a request for places. Reply in one or two sentences and offer to find places; "
    "do not name or suggest any place."
)
CHAT_TEMPLATE = (
    "Tell me what you'd like to do (somewhere to eat, to work out, to relax, an errand) and I'll "
    "suggest places that fit your routine."
)
