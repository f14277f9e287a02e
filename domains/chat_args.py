"""A domain's own chat arguments: fields of the understanding form only that domain fills.

Places have a distance ("closer", "walking distance"); films a decade ("something from the 80s").
Each argument is a field of the form's JSON schema (offered only when the message has words for
it, and kept only then), a way the rules read it when the LLM cannot, how it changes the
conversation's search (kept in the state's ``args``), and how the search is said to a person.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class ChatArgument(Protocol):
    name: str  # the form's field
    default: Any  # what the field is when the message leaves it out ("same": no change)
    prompt: str  # the understanding prompt's line for the field

    def schema(self) -> dict[str, Any]: ...

    def cued(self, message: str) -> bool:
        """Does the message have words for this argument (else the field is neither offered nor kept)?"""
        ...

    def from_rules(self, message: str) -> Any:
        """The field as the rules read the message (the default when they read nothing)."""
        ...

    def apply(self, args: dict[str, Any], value: Any) -> dict[str, Any]:
        """The search's domain arguments after this value."""
        ...


def describe_args(args: Mapping[str, Any]) -> list[str]:
    """Neutral words for arguments no domain words better."""
    return [f"{k.replace('_', ' ')} {v}" for k, v in args.items() if v is not None]


@dataclass(frozen=True)
class EnumArgument:
    """A closed choice whose words are a pattern (a helper for simple arguments)."""

    name: str
    choices: tuple[str, ...]
    default: Any
    prompt: str
    words: re.Pattern[str]

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices), "default": self.default}

    def cued(self, message: str) -> bool:
        return bool(self.words.search(message))
