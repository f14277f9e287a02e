"""OpenAI-compatible wire models for ``POST /v1/chat/completions`` (as vLLM's protocol.py does): the
request, the response, the stream chunks and the usage object. Unknown request fields are
accepted and ignored, as OpenAI clients send many."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[Any] | None = None

    def text(self) -> str:
        """The message's text: a string, or the text parts of a content list."""
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return " ".join(
                str(p.get("text", ""))
                for p in self.content
                if isinstance(p, dict) and p.get("type", "text") == "text"
            ).strip()
        return ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = "chronotope"
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=200)
    user: str | None = Field(None, max_length=64, description="The Chronotope user id.")
    stream: bool = False
    stream_options: StreamOptions | None = None


class UsageInfo(BaseModel):
    """Tokens the language model read and wrote for this turn (summed over its calls: understanding
    and reply); zero when rules and the template answered without it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def of(cls, usage: dict[str, int]) -> UsageInfo:
        p, c = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        return cls(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str = "stop"


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class StreamChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: str | None = None


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: UsageInfo
    chronotope: dict[str, Any] = Field(default_factory=dict, description="Items, ids and sources.")


class ChatCompletionStreamResponse(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[StreamChoice]
    usage: UsageInfo | None = None
    chronotope: dict[str, Any] | None = None
