"""What one chat turn asks for: the form the LLM fills in (a JSON schema the server enforces), and
the checks that keep only what the user actually said.

The model picks the action (which tool: the registry's names, agent/chat/tools) and its arguments,
the neutral ones here and the domain's own (a distance for places; domains/chat_args.py). A small
model invents arguments (exclusions nobody mentioned, a distance nobody asked for, a wish copied
from the few-shot examples), so every free-text field is verified against the user's own words
before it acts, and the closed fields are enums. What was dropped, and why, goes into the turn's
trace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.chat.novelty import novelty_cued
from domains.chat_args import ChatArgument

ACTIONS: tuple[str, ...] = ("recommend", "explain", "reject", "undo", "profile", "chat")
MAX_SHOWN = 9

WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Words that carry no content for the "did the user say this?" check.
FILLER = frozenset(
    """a an the and or of to for in on at by with some any somewhere someplace place places spot
    something anything thing things one ones no not without except but please me my i im i'm want
    need would like go get find show us we you your is are be it this that there here just really
    maybe instead also too very more less kind sort type
    ok okay what else other others suggest suggestion suggestions recommend recommendation
    recommendations option options alternative alternatives idea ideas another then so well
    hmm yes yeah sure cool looking look searching search within around near nearby""".split()
)  # the second part: "ok, what else would you suggest?" asks for more, it names no wish
# An exclusion must be negated in the message ("no X", "anything but X", "X is off the table"):
# a small model also lists what the user asked FOR under "avoid". Several languages, as a check only.
NEGATION = re.compile(
    r"\b(no|not|nothing|none|without|except|avoid|skip|never|anything but|other than|rather than|"
    r"instead of|don'?t|doesn'?t|isn'?t|aren'?t|won'?t|hate|sick of|tired of|enough|no more|"
    r"nada|sin|ni|pas|sans|aucun|kein\w*|nicht|ohne)\b|不要|不想|别|没有",
    re.IGNORECASE,
)
# "no Italian", "without the crowds", "anything but sushi": the phrase a negation governs. The
# rules fallback takes its exclusions from here, and verification adds any the model missed.
NEGATED = re.compile(
    r"\b(?:no|not|without|except|avoid|skip|anything but|nothing"
    r"|(?:is|are|was)n['’]?t|don['’]?t\s+want(?!\s+to\b))"
    r"\s+((?:an?\s+|any\s+|more\s+)?"
    r"[\w'&-]+(?:\s+(?!but\b|and\b|or\b|please\b)[\w'&-]+){0,2})",
    re.IGNORECASE,
)
NEGATION_WINDOW = 5  # words between the negation and the excluded phrase
OFF_THE_TABLE = re.compile(r"\b(is|are)\s+(off|out|not)\b", re.IGNORECASE)  # "pizza is off the table"
WHEN_CUES: dict[str, re.Pattern[str]] = {
    "morning": re.compile(r"\b(morning|breakfast|brunch|early|a\.?m\.?)\b", re.IGNORECASE),
    "lunch": re.compile(r"\b(lunch|noon|midday|lunchtime)\b", re.IGNORECASE),
    "afternoon": re.compile(r"\b(afternoon|after work|after the office|p\.?m\.?)\b", re.IGNORECASE),
    "evening": re.compile(r"\b(evening|tonight|dinner|after work|sunset)\b", re.IGNORECASE),
    "night": re.compile(r"\b(night|tonight|late|midnight)\b", re.IGNORECASE),
    "tomorrow": re.compile(r"\b(tomorrow)\b", re.IGNORECASE),
    "weekend": re.compile(r"\b(weekend|saturday|sunday)\b", re.IGNORECASE),
}


class TurnIntent(BaseModel):
    """The form. Field order is generation order: the action first, so it conditions the rest.
    Every field but ``action`` may be left out, which keeps the generated JSON short."""

    model_config = ConfigDict(extra="ignore")

    action: str = Field(description="Which tool: one of the registry's (agent/chat/tools).")
    item: int = Field(0, ge=0, le=MAX_SHOWN, description="Shown place meant (1 = first); 0 none.")
    wish: str = Field("", max_length=60, description="The kind of place or activity wanted.")
    # One kind: the model's first pick was right far more often than its second, and a second,
    # weaker kind let places of the wrong kind into the shown list (the chat evaluation's dev half:
    # 0.47 -> 0.71 of turns grounded only in wished kinds, replaying stored intents).
    kinds: list[str] = Field(
        default_factory=list, max_length=1, description="The kind of place that best serves the wish."
    )
    avoid: list[str] = Field(default_factory=list, max_length=3, description="What they do not want.")
    forget: list[str] = Field(
        default_factory=list, max_length=3, description="Earlier wishes or exclusions taken back."
    )
    # the domain's own arguments by field name ({"distance": "closer"}); absent: "same"
    args: dict[str, Any] = Field(default_factory=dict)
    new_places: Literal["same", "yes", "no"] = "same"
    when: Literal["now", "morning", "lunch", "afternoon", "evening", "night", "tomorrow", "weekend"] = "now"


def intent_json_schema(
    message: str | None = None,
    n_shown: int = MAX_SHOWN,
    state: Any = None,
    actions: Sequence[str] = ACTIONS,
    domain_args: Sequence[ChatArgument] = (),
) -> dict[str, Any]:
    """The JSON schema sent as ``response_format``; short strings keep a small model from rambling.

    The kinds are free text, not an enum of the catalog's kinds: under an enum the decoder
    completes whatever the model starts to write into some kind with that prefix ("wine shop"
    became "Wings Joint", "cab" "Caribbean Restaurant"). The prompt lists the catalog's kinds
    instead, and the grounding maps what the model writes onto them.

    Given the turn (``message``, how many items are shown, the conversation's ``state``), the
    schema offers only the fields this message could fill: a field ``verify`` would drop for
    want of the user's words (a distance with no word about distance, an exclusion with no
    negation, an item when nothing is shown) is left out. The outcome is the same, but the model
    no longer spends decoding steps on it: it filled such fields in about half of the turns
    measured, at ~6 tokens/s on two cores."""
    base = TurnIntent.model_json_schema()["properties"]
    props: dict[str, Any] = {"action": {"type": "string", "enum": list(actions)}}
    for name in ("item", "wish", "kinds", "avoid", "forget"):
        props[name] = base[name]
    for arg in domain_args:  # where "distance" has always been: after forget, before new_places
        props[arg.name] = arg.schema()
    for name in ("new_places", "when"):
        props[name] = base[name]
    for name in ("kinds", "avoid", "forget"):
        props[name]["items"] = {"type": "string", "maxLength": 40}
    for prop in props.values():
        prop.pop("title", None)
        prop.pop("description", None)  # descriptions are in the prompt; in the schema they cost nothing
    schema = {"type": "object", "properties": props, "required": ["action"], "additionalProperties": False}
    if message is None:
        return schema
    if not getattr(state, "written", None):  # nothing stored in this conversation to take back
        props["action"]["enum"] = [a for a in props["action"]["enum"] if a not in WRITTEN_ONLY]
    if n_shown <= 0:
        props.pop("item")
        props["action"]["enum"] = [a for a in props["action"]["enum"] if a not in SHOWN_ONLY]
    else:
        props["item"]["maximum"] = min(n_shown, MAX_SHOWN)
    if not (NEGATION.search(message) or OFF_THE_TABLE.search(message)):
        props.pop("avoid")
    if not (getattr(state, "wish", "") or getattr(state, "avoid", None)):
        props.pop("forget")
    for arg in domain_args:
        if not arg.cued(message):
            props.pop(arg.name)
    if not novelty_cued(message):
        props.pop("new_places")
    cued = [w for w, cue in WHEN_CUES.items() if cue.search(message)]
    if cued:
        props["when"]["enum"] = cued
    else:
        props.pop("when")
    return schema


SHOWN_ONLY = ("explain", "reject")  # actions about an item shown before
WRITTEN_ONLY = ("undo",)  # actions about feedback this conversation stored


def parse_answer(
    data: dict[str, Any], domain_args: Sequence[ChatArgument] = (), actions: Sequence[str] = ACTIONS
) -> TurnIntent:
    """The form as the model filled it: the domain's fields into ``args``; an action no tool has
    is an unusable answer (ValueError)."""
    data = dict(data)
    if data.get("action") not in actions:
        raise ValueError(f"no tool named {data.get('action')!r}")
    args = {a.name: data.pop(a.name) for a in domain_args if a.name in data}
    intent = TurnIntent.model_validate(data)
    intent.args = {k: v for k, v in args.items() if v is not None}
    return intent


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in FILLER and len(w) > 1]


def _stem(w: str) -> str:
    w = w.lower()
    for suffix in ("ing", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def negated(phrase: str, message: str) -> bool:
    """Is a content word of ``phrase`` in ``message`` within a few words after a negation (or,
    for "X is off the table"-like phrasing, the negation right after it)?"""
    tokens = re.findall(r"[^\W_]+(?:'[a-z]+)?|[^\x00-\x7f]", message.lower())
    targets = {_stem(w) for w in words(phrase)}
    for i, tok in enumerate(tokens):
        if _stem(tok) not in targets and not any(len(t) >= 5 and tok.startswith(t[:5]) for t in targets):
            continue
        before = " ".join(tokens[max(0, i - NEGATION_WINDOW) : i])
        after = " ".join(tokens[i + 1 : i + 3])
        if NEGATION.search(before) or OFF_THE_TABLE.match(after):
            return True
    return bool(NEGATION.search(message)) and not re.search(r"[a-z]", message.lower())  # e.g. Chinese


def negated_phrases(message: str) -> list[str]:
    """The phrases ``message`` negates ("no Italian, something Asian" -> ["Italian"])."""
    out = []
    for m in NEGATED.finditer(message):
        phrase = re.sub(r"^(an?|any|more|the)\s+", "", m.group(1).strip(), flags=re.IGNORECASE)
        if words(phrase) and not _reference(phrase) and not _set_phrase(phrase):
            out.append(phrase)
    return out


# "no thanks", "no problem", "not sure", "not now": set phrases, not things to exclude
SET_PHRASE_WORDS = frozenset(
    "thanks thank thx problem problems worries way idea clue sure really yet now rush hurry matter "
    "doubt kidding joke offense offence pressure".split()
)


def _set_phrase(phrase: str) -> bool:
    first = re.findall(r"[\w']+", phrase.lower())[:1]
    return bool(first) and first[0] in SET_PHRASE_WORDS


REFERENCE_WORDS = frozenset(
    "first second third fourth fifth sixth seventh eighth ninth tenth last one ones that this those "
    "these it number no".split()
)


def _reference(phrase: str) -> bool:
    """ "the second one", "that one", "number 3": a pointer at a shown item, not a thing to avoid."""
    return all(
        w in REFERENCE_WORDS or w.isdigit() or re.fullmatch(r"\d+(st|nd|rd|th)", w) for w in words(phrase)
    )


def said(phrase: str, text: str) -> bool:
    """Does at least one content word of ``phrase`` occur in ``text``: by stem, by 5-letter
    prefix, or inside the text written without spaces ("workout" in "work out")?"""
    have = {_stem(w) for w in words(text)}
    prefixes = {w[:5] for w in have if len(w) >= 5}
    squashed = "".join(WORD.findall(text.lower()))
    for w in words(phrase):
        s = _stem(w)
        if s in have or (len(s) >= 5 and (s[:5] in prefixes or s in squashed)):
            return True
    return False


@dataclass
class Verified:
    intent: TurnIntent
    dropped: list[str] = field(default_factory=list)  # "avoid 'pizza': not in the message", ...


def verify(
    intent: TurnIntent,
    message: str,
    earlier_user_text: str,
    n_shown: int,
    state: Any,
    domain_args: Sequence[ChatArgument] = (),
) -> Verified:
    """Keep only the arguments the user's words support.

    ``earlier_user_text``: the user's earlier messages in this conversation (a wish may come from
    them: "actually, closer" keeps talking about the dumplings). ``state`` is the conversation's
    ChatState (for ``forget``)."""
    out = intent.model_copy(deep=True)
    dropped: list[str] = []
    said_anywhere = f"{message}\n{earlier_user_text}"
    if out.wish and not NEGATION.search(out.wish) and negated(out.wish, message):
        # "no donuts or bagels" is not a wish for donuts: it is an exclusion.
        dropped.append(f"wish {out.wish!r}: the message rules it out; taken as an exclusion")
        out.avoid = [*out.avoid, out.wish][:3]
        out.wish, out.kinds = "", []
    if out.wish and not said(out.wish, said_anywhere):
        # A wish in other words than the user's may be invented (copied from an example or the
        # profile); the kinds the model proposed then have to fit the message itself.
        dropped.append(f"wish {out.wish!r}: not in the user's words; the message stands for it")
        out.wish = message[:60] if out.kinds and out.action == "recommend" else ""
        if not out.wish:
            out.kinds = []
    for k in list(out.kinds):
        if negated(k, message):  # "something spicy, not Indian" with the kind "Indian Restaurant"
            dropped.append(f"kind {k!r}: the message rules it out; taken as an exclusion")
            out.kinds.remove(k)
            if not any(said(a, k) for a in out.avoid):
                out.avoid = [*out.avoid, k][:3]
    keep_avoid = []
    for a in out.avoid:
        if not said(a, message):
            dropped.append(f"avoid {a!r}: not in this message")
        elif out.wish and {_stem(w) for w in words(a)} & {_stem(w) for w in words(out.wish)}:
            dropped.append(f"avoid {a!r}: part of the wish itself")  # the wish is not negated
        elif not negated(a, message):
            dropped.append(f"avoid {a!r}: the message does not rule it out")
        else:
            keep_avoid.append(a)
    for phrase in negated_phrases(message):  # an exclusion the model missed is still honoured
        if (
            len(keep_avoid) < 3
            and not any(said(phrase, a) for a in keep_avoid)
            and not (out.wish and said(phrase, out.wish))
        ):
            keep_avoid.append(phrase)
            dropped.append(f"avoid {phrase!r}: negated in the message, added (the model missed it)")
    out.avoid = keep_avoid
    current = [getattr(state, "wish", "") or "", *(getattr(state, "avoid", None) or [])]
    keep_forget = []
    for f in out.forget:
        if said(f, message) and any(said(f, c) for c in current if c):
            keep_forget.append(f)
        else:
            dropped.append(f"forget {f!r}: not something the user said and had asked for")
    out.forget = keep_forget
    if out.item > n_shown:
        dropped.append(f"item {out.item}: only {n_shown} shown")
        out.item = 0
    for arg in domain_args:
        value = out.args.get(arg.name, arg.default)
        if value != arg.default and not arg.cued(message):
            dropped.append(f"{arg.name} {value!r}: the message says nothing about {arg.name}")
            out.args.pop(arg.name, None)
    if out.new_places != "same" and not novelty_cued(message):
        dropped.append(f"new_places {out.new_places!r}: the message says nothing about new places")
        out.new_places = "same"
    if out.when != "now" and not WHEN_CUES[out.when].search(message):
        dropped.append(f"when {out.when!r}: the message names no such time")
        out.when = "now"
    if out.action in ("explain", "reject") and n_shown == 0:
        dropped.append(f"action {out.action!r}: nothing has been shown yet")
        asks = out.wish or out.kinds or out.avoid or out.args or out.new_places != "same"
        out.action = "recommend" if asks else "chat"
    return Verified(out, dropped)
