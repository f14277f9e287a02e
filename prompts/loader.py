"""Load prompt templates (YAML files in this package) and render them with Jinja2 StrictUndefined.

Each file has ``name``, ``version`` and its messages: either one template per role (a mapping) or a
list of ``{role, content}`` entries (for few-shot examples, which need several user/assistant
turns). The version is stored with every recommendation and chat turn the prompt produced, so a
trace says exactly which wording was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined

_ENV = Environment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    templates: tuple[tuple[str, str], ...]  # (role, template), in order

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """Chat messages (system first); a missing variable raises instead of rendering blank."""
        return [
            {"role": role, "content": _ENV.from_string(text).render(**variables).strip()}
            for role, text in self.templates
        ]


def available() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in resources.files("prompts").iterdir() if p.name.endswith(".yaml")
    )


@cache
def load_prompt(name: str) -> Prompt:
    path = resources.files("prompts") / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"no prompt named {name!r}; have {', '.join(available())}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    messages = data["messages"]
    pairs = (
        tuple((str(m["role"]), str(m["content"])) for m in messages)
        if isinstance(messages, list)
        else tuple((str(role), str(text)) for role, text in messages.items())
    )
    return Prompt(name=data["name"], version=str(data["version"]), templates=pairs)
