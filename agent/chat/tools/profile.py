"""``profile``: what was learned from the person's history, in words they read (no ids)."""

from __future__ import annotations

import re

from agent.chat.present import PROFILE_TASK
from agent.chat.tools.base import ToolResult, TurnDeps, pattern_cue
from core.nouns import Nouns

WORDS = re.compile(r"\b(who am i|my profile|about me|what do you know|my habits|my routine)\b", re.IGNORECASE)


class Profile:
    name = "profile"
    needs_shown = False
    cue = staticmethod(pattern_cue(WORDS))

    def describe(self, nouns: Nouns) -> str:
        return "they ask what is known about them"

    def run(self, deps: TurnDeps) -> ToolResult:
        user = deps.user
        text = deps.call(
            "profile",
            {},
            lambda: (
                deps.domain.readable_profile(user.profile.text, user.profile, deps.pipeline.retriever.kind_of)
                if user.profile is not None and user.profile.text
                else ""
            ),
        )
        results = "What was learned from their history: " + (text or "too little history to say much yet.")
        template = ("Here is what I know: " + text) if text else "I don't know much about you yet."
        return ToolResult(results, template, PROFILE_TASK, deps.state, action="profile")


PROFILE = Profile()
