"""One way to reach the LLM: clients built from settings, for whichever URL is configured.

A configured base URL never falls back to an OpenAI key from the environment: the key is the
setting's (``EMPTY`` for a local vLLM server)."""

from __future__ import annotations

from typing import Any

from core.settings import Settings


def server_root(base_url: str) -> str:
    """An OpenAI-compatible base URL without its ``/v1``: where vLLM serves /health and /tokenize."""
    return base_url.rstrip("/").removesuffix("/v1")


def make_openai_client(settings: Settings, *, timeout_s: float | None = None) -> Any:
    import openai

    return openai.OpenAI(
        base_url=settings.resolved_llm_base_url,
        api_key=settings.llm.api_key.get_secret_value(),
        timeout=timeout_s or settings.llm.timeout_s,
        max_retries=0,  # retries are ours (tenacity + breaker), so a dead server fails fast
    )
