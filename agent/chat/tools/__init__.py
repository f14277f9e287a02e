"""The chat's tools: one object each (agent/chat/tools/base.py), listed once here.

The registry drives the turn: the understanding form's actions are its names (in this order), the
prompt's line for each is the tool's own ``describe``, the rules fallback asks each tool in
``RULES_ORDER`` whether the message has its words, and the turn runs the tool the intent names.
Adding a tool is one file plus a line here (and its test).
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.chat.tools.base import Tool, ToolResult, TurnDeps
from agent.chat.tools.explain import EXPLAIN
from agent.chat.tools.profile import PROFILE
from agent.chat.tools.recommend import RECOMMEND
from agent.chat.tools.reject import REJECT
from agent.chat.tools.smalltalk import SMALLTALK
from agent.chat.tools.undo import UNDO
from core.nouns import Nouns


class Registry:
    def __init__(self, tools: Sequence[Tool], rules_order: Sequence[str], default: str) -> None:
        self.tools = {t.name: t for t in tools}
        self.names: tuple[str, ...] = tuple(t.name for t in tools)
        self.rules_order = tuple(rules_order)
        self.default = default

    def get(self, name: str) -> Tool:
        return self.tools.get(name) or self.tools[self.default]

    def cued(self, message: str) -> str:
        """The tool the rules read in ``message``: the first whose words it has, else the default."""
        return next((n for n in self.rules_order if self.tools[n].cue(message)), self.default)

    def action_lines(self, nouns: Nouns) -> str:
        return "; ".join(f'"{t.name}" = {t.describe(nouns)}' for t in self.tools.values()) + "."


TOOLS = Registry(
    [RECOMMEND, EXPLAIN, REJECT, UNDO, PROFILE, SMALLTALK],
    rules_order=("profile", "explain", "undo", "reject", "chat"),
    default="recommend",
)

__all__ = ["TOOLS", "Registry", "Tool", "ToolResult", "TurnDeps"]
