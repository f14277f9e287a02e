"""Any OpenAI client talks to Chronotope: the official `openai` package and LangChain's ChatOpenAI,
against the running app (uvicorn on loopback) over real NYC users."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.data, pytest.mark.slow]


def test_official_openai_client(nyc_app: tuple[str, dict[str, str], str]) -> None:
    import openai

    base, keys, user = nyc_app
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=keys["user"], timeout=60)
    resp = client.chat.completions.create(
        model="chronotope",
        user=user,
        messages=[{"role": "user", "content": "Where should I go this evening?"}],
    )
    text = resp.choices[0].message.content or ""
    assert text.startswith("Here are my suggestions") and "1. " in text
    stream = client.chat.completions.create(
        model="chronotope", user=user, stream=True, messages=[{"role": "user", "content": "somewhere new"}]
    )
    streamed = "".join((chunk.choices[0].delta.content or "") for chunk in stream if chunk.choices)
    assert "1. " in streamed and "new to you" in streamed
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{base}/v1", api_key="ck_bad").chat.completions.create(
            model="chronotope", user=user, messages=[{"role": "user", "content": "hi"}]
        )


def test_langchain_chat_openai(nyc_app: tuple[str, dict[str, str], str]) -> None:
    from langchain_openai import ChatOpenAI

    base, keys, user = nyc_app
    llm = ChatOpenAI(
        model="chronotope",
        base_url=f"{base}/v1",
        api_key=keys["user"],
        model_kwargs={"user": user},
        timeout=60,
        max_retries=0,
    )
    reply = llm.invoke("Recommend a place, but no coffee")
    assert "Here are my suggestions" in str(reply.content) and "avoiding coffee" in str(reply.content)
