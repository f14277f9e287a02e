"""Streaming a chat turn over HTTP: the agent's events as Server-Sent Events (sse-starlette), in
Chronotope's own shape for ``/v1/chat`` and as OpenAI chunks for ``/v1/chat/completions``.

The turn is a blocking generator (database, FAISS, LLM calls); each step runs in the thread
pool. When the client goes away the task is cancelled after the current step (one streamed token,
or the understanding call, which its timeout bounds), and the generator is closed, which closes
the LLM's stream so vLLM stops generating, and stores the turn as not delivered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from anyio import to_thread
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from agent.chat import ChatEvent, ChatTurn
from api.errors import error_body
from api.protocol import (
    ChatCompletionStreamResponse,
    DeltaMessage,
    StreamChoice,
    UsageInfo,
)
from api.schemas import ChatOut
from core.errors import ChronotopeError

_END = object()


def _next(it: Iterator[Any]) -> Any:
    return next(it, _END)


async def run_in_threads(events: Iterator[ChatEvent]) -> AsyncIterator[ChatEvent]:
    try:
        while True:
            ev = await to_thread.run_sync(_next, events)
            if ev is _END:
                return
            yield ev
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(close)


def chat_out(turn: ChatTurn) -> ChatOut:
    return ChatOut.model_validate(turn.to_dict())


def chat_sse(events: Iterator[ChatEvent]) -> EventSourceResponse:
    """``/v1/chat`` with ``stream: true``: events ``turn`` (the places, before the reply), ``delta``
    ({"content"}), ``reset`` (drop the text shown so far; a replacement follows), ``done`` (the
    whole response, as without streaming) or ``error`` (the error object, last)."""

    async def gen() -> AsyncIterator[ServerSentEvent]:
        try:
            async for ev in run_in_threads(events):
                if ev.kind == "done":
                    yield ServerSentEvent(chat_out(ev.data).model_dump_json(), event="done")
                elif ev.kind == "delta":
                    yield ServerSentEvent(json.dumps({"content": ev.data}), event="delta")
                elif ev.kind == "reset":
                    yield ServerSentEvent("{}", event="reset")
                else:
                    yield ServerSentEvent(json.dumps(ev.data, default=str), event=ev.kind)
        except ChronotopeError as exc:
            yield ServerSentEvent(json.dumps(error_body(exc.message, exc.type, exc.code)), event="error")

    return EventSourceResponse(gen(), sep="\n", ping=15)


def openai_sse(
    events: Iterator[ChatEvent], completion_id: str, created: int, model: str, include_usage: bool
) -> EventSourceResponse:
    """OpenAI chunks: the role, then the reply's tokens as they are released, then the finish
    chunk (with Chronotope's items), the usage chunk when asked for, and ``[DONE]``. A ``reset``
    cannot be taken back in this protocol: the replacement follows after a blank line."""

    def chunk(delta: DeltaMessage, finish: str | None = None, **extra: Any) -> str:
        return ChatCompletionStreamResponse(
            id=completion_id,
            created=created,
            model=model,
            choices=[StreamChoice(delta=delta, finish_reason=finish)],
            **extra,
        ).model_dump_json(exclude_none=True)

    async def gen() -> AsyncIterator[str]:
        yield chunk(DeltaMessage(role="assistant", content=""))
        try:
            async for ev in run_in_threads(events):
                if ev.kind == "delta":
                    yield chunk(DeltaMessage(content=ev.data))
                elif ev.kind == "reset":
                    yield chunk(DeltaMessage(content="\n\n"))
                elif ev.kind == "done":
                    turn: ChatTurn = ev.data
                    if turn.text_with_items != turn.reply:  # the items, listed under the reply
                        yield chunk(DeltaMessage(content=turn.text_with_items[len(turn.reply) :]))
                    yield chunk(DeltaMessage(), "stop", chronotope=openai_meta(turn))
                    if include_usage:
                        yield ChatCompletionStreamResponse(
                            id=completion_id,
                            created=created,
                            model=model,
                            choices=[],
                            usage=UsageInfo.of(turn.usage),
                        ).model_dump_json(exclude_none=True)
        except ChronotopeError as exc:
            yield json.dumps(error_body(exc.message, exc.type, exc.code))
        yield "[DONE]"

    return EventSourceResponse(gen(), sep="\n", ping=15)


def openai_meta(turn: ChatTurn) -> dict[str, Any]:
    return {
        "conversation_id": turn.conversation_id,
        "recommendation_id": turn.recommendation_id,
        "items": turn.items,
        "reply_source": turn.reply_source,
        "understood_by": turn.understood_by,
        "ranker": turn.ranker,
    }
