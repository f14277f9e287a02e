"""``POST /v1/chat/completions``: the chat agent behind the OpenAI chat-completions protocol.

One pass over the message list: the earlier user and assistant messages are the conversation so
far (a stored conversation they match is continued, with its state), the last user message is the
turn. The request's ``user`` field names the Chronotope user. Client system prompts do not steer
the agent (they are not part of the user's conversation)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from api.deps import CurrentKey, State
from api.protocol import (
    AssistantMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    UsageInfo,
    completion_id,
)
from api.streaming import openai_meta, openai_sse
from core.errors import InvalidInputError

router = APIRouter(tags=["chat"])


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletionResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks with stream"}},
)
def chat_completions(body: ChatCompletionRequest, key: CurrentKey, state: State) -> Any:
    user_id = body.user or key.user_id
    if not user_id:
        raise InvalidInputError("set the request's `user` field to the Chronotope user id")
    key.require_act_as(user_id)
    last = body.messages[-1]
    if last.role != "user" or not last.text().strip():
        raise InvalidInputError("the last message must be a user message with text")
    prior = [
        {"role": m.role, "content": m.text()}
        for m in body.messages[:-1]
        if m.role in ("user", "assistant") and m.text().strip()
    ]
    state.chat.check_access(user_id, None)
    events = state.chat.stream(user_id, last.text(), prior=prior)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return openai_sse(events, completion_id(), int(time.time()), body.model, include_usage)
    turn = [ev.data for ev in events if ev.kind == "done"][-1]
    return ChatCompletionResponse(
        model=body.model,
        choices=[Choice(message=AssistantMessage(content=turn.text_with_items))],
        usage=UsageInfo.of(turn.usage),
        chronotope=openai_meta(turn),
    )
