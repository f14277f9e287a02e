"""A fake OpenAI-compatible client for unit tests of the logic around the LLM (never the only test)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def logprob_response(token: str, alts: dict[str, float]) -> Any:
    top = [SimpleNamespace(token=t, logprob=lp) for t, lp in alts.items()]
    content = [SimpleNamespace(token=token, logprob=alts.get(token, -1.0), top_logprobs=top)]
    return SimpleNamespace(choices=[SimpleNamespace(logprobs=SimpleNamespace(content=content), message=None)])


def text_response(text: str) -> Any:
    return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=text), logprobs=None)])


class FakeClient:
    """``handler(kwargs) -> response`` answers every chat.completions.create call; calls are recorded."""

    def __init__(self, handler: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        outer = self

        class _Completions:
            def create(self, **kwargs: Any) -> Any:
                outer.calls.append(kwargs)
                return handler(kwargs)

        self.chat = SimpleNamespace(completions=_Completions())
