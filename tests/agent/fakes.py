"""A fake OpenAI-compatible client for unit tests of the logic around the LLM (never the only test)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def logprob_response(token: str, alts: dict[str, float]) -> Any:
    top = [SimpleNamespace(token=t, logprob=lp) for t, lp in alts.items()]
    content = [SimpleNamespace(token=token, logprob=alts.get(token, -1.0), top_logprobs=top)]
    return SimpleNamespace(choices=[SimpleNamespace(logprobs=SimpleNamespace(content=content), message=None)])


def text_response(text: str, finish_reason: str = "stop") -> Any:
    return SimpleNamespace(
        choices=[
            SimpleNamespace(message=SimpleNamespace(content=text), logprobs=None, finish_reason=finish_reason)
        ]
    )


class FakeClient:
    """``handler(kwargs) -> response`` answers every chat.completions.create call; calls are recorded."""

    def __init__(self, handler: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        outer = self

        class _Completions:
            def create(self, **kwargs: Any) -> Any:
                outer.calls.append(kwargs | {"timeout": outer._timeout})
                return handler(kwargs)

        self._timeout: float | None = None
        self.chat = SimpleNamespace(completions=_Completions())

    def with_options(self, timeout: float | None = None, **_kw: Any) -> FakeClient:
        """Like the openai client's: the per-call timeout is recorded with the next calls."""
        self._timeout = timeout
        return self


class FakeStream:
    """A streamed completion: one chunk per piece, then a finish chunk carrying usage."""

    def __init__(self, pieces: list[str], delay_s: float = 0.0, finish: str = "stop") -> None:
        self.pieces = pieces
        self.delay_s = delay_s
        self.finish = finish
        self.closed = False

    def __iter__(self) -> Any:
        import time

        for p in self.pieces:
            if self.delay_s:
                time.sleep(self.delay_s)
            yield SimpleNamespace(
                choices=[SimpleNamespace(delta=SimpleNamespace(content=p), finish_reason=None)], usage=None
            )
        yield SimpleNamespace(
            choices=[SimpleNamespace(delta=SimpleNamespace(content=None), finish_reason=self.finish)],
            usage=None,
        )
        yield SimpleNamespace(
            choices=[], usage=SimpleNamespace(prompt_tokens=100, completion_tokens=len(self.pieces))
        )

    def close(self) -> None:
        self.closed = True


class FakeChatLLM:
    """Stands in for the OpenAI client in unit tests of the chat's logic (the real server has its
    own tests in tests/integration). Understanding calls (``response_format`` set) get the next of
    ``intents``; streamed reply calls get the next of ``replies``, word by word. An Exception in
    either list is raised instead."""

    def __init__(
        self, intents: list[Any] | None = None, replies: list[Any] | None = None, delay_s: float = 0.0
    ) -> None:
        self.intents = list(intents or [])
        self.replies = list(replies or [])
        self.delay_s = delay_s
        self.calls: list[dict[str, Any]] = []
        self.streams: list[FakeStream] = []
        outer = self

        class _Completions:
            def create(self, **kwargs: Any) -> Any:
                outer.calls.append(kwargs)
                if kwargs.get("response_format"):
                    answer = outer.intents.pop(0) if outer.intents else {"action": "chat"}
                    if isinstance(answer, Exception):
                        raise answer
                    import json

                    text = answer if isinstance(answer, str) else json.dumps(answer)
                    return SimpleNamespace(
                        choices=[SimpleNamespace(message=SimpleNamespace(content=text))],
                        usage=SimpleNamespace(prompt_tokens=300, completion_tokens=20),
                    )
                answer = outer.replies.pop(0) if outer.replies else "Here you go."
                if isinstance(answer, Exception):
                    raise answer
                words = answer.split(" ")
                stream = FakeStream([w if i == 0 else " " + w for i, w in enumerate(words)], outer.delay_s)
                outer.streams.append(stream)
                return stream

        self.chat = SimpleNamespace(completions=_Completions())

    def with_options(self, **_kwargs: Any) -> FakeChatLLM:
        return self

    def understanding_calls(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c.get("response_format")]

    def reply_calls(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c.get("stream")]
