"""The words a person reads about what they were served: why a list is empty, how a thin one was
filled, and why the language model did not do its part (the error itself goes to the trace)."""

from __future__ import annotations

from domains.base import Domain
from retrieval.types import RankedList, RequestContext


def empty_note(domain: Domain, ranked: RankedList, ctx: RequestContext) -> str:
    """Why a list is empty, in words for the person (the filter that left nothing)."""
    items = domain.nouns.items
    why = ranked.emptied_by
    if why:
        name = why["filter"].replace("_", " ")
        asked = filter_words(domain, why["filter"], ctx)
        return (
            f"no {items} fit: the {name} filter{f' ({asked})' if asked else ''} left none of the "
            f"{why['allowed_before']:,} there were"
        )
    return f"no {items} to recommend: the catalog has none this request may be shown"


def fill_note(domain: Domain, ranked: RankedList) -> str:
    """How a thin list was filled: "only 1 place of the kinds you asked for fits; 2 more of
    related kinds (Japanese Restaurant) and 2 more within 2 km follow"."""
    n = domain.nouns
    w = ranked.wished
    head = (
        f"no {n.items} of the kinds you asked for fit"
        if w == 0
        else f"only {w} {n.item if w == 1 else n.items} of the kinds you asked for "
        f"{'fits' if w == 1 else 'fit'}"
    )
    parts = []
    for f in ranked.filled:
        if f["step"] == "related_kinds":
            kinds = f" ({', '.join(f['kinds'][:3])})" if f["kinds"] else ""
            parts.append(f"{f['added']} of related kinds{kinds}")
        else:
            parts.append(f"{f['added']} {f['words']}")
    verb = "follows" if sum(f["added"] for f in ranked.filled) == 1 else "follow"
    return f"{head}; {' and '.join(parts)} {verb}"


def filter_words(domain: Domain, name: str, ctx: RequestContext) -> str:
    """What the request asked of the filter that emptied the list, in words."""
    listed = {
        "include_categories": ("only ", ctx.include_categories),
        "include_kinds": ("only ", ctx.include_kinds),
        "exclude_categories": ("no ", ctx.exclude_categories),
        "exclude_kinds": ("no ", ctx.exclude_kinds),
    }
    if name in listed:
        word, values = listed[name]
        return word + ", ".join(values)
    if name == "exclude_visited":
        return f"not {domain.nouns.items} you have {domain.nouns.had} already"
    if name == "exclude_items":
        return f"{len(ctx.exclude_items)} turned down"
    return ", ".join(domain.describe_args(ctx.args))


def why_not_llm(error: str) -> str:
    """Why the LLM did not do its part, in words for a person (no exception names or ids)."""
    e = error.lower()
    if "check" in e:
        return "the language model's replies failed the checks twice"
    if "unusable" in e or "json" in e or "parse" in e:
        return "the language model's answer could not be used"
    if "busy" in e or "queue" in e:
        return "the language model is busy"
    if "deadline" in e or "time" in e:
        return "the language model ran out of time"
    return "the language model is unavailable"
