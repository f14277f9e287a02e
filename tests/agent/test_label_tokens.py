"""Label token ids for the rerank constraint: lookup, caching, and falling back to the grammar."""

from __future__ import annotations

import httpx
import pytest

from agent.llm.label_tokens import LabelTokens, tokenize_url
from agent.llm.rerank import LLMReranker
from core.settings import Settings
from domains.places import PLACES
from mining import UserProfile
from retrieval.types import Candidate, RequestContext
from tests.agent.conftest import llm_session
from tests.agent.fakes import FakeClient, logprob_response

VOCAB = {"A": [32], " A": [362], "B": [33], " B": [425], "C": [34], " C": [356], "AB": [1, 2]}


def _lookup(monkeypatch: pytest.MonkeyPatch, vocab: dict[str, list[int]]) -> tuple[LabelTokens, list[str]]:
    calls: list[str] = []
    lt = LabelTokens(Settings(env="test"))

    def fake(text: str, *_: object) -> list[int]:
        calls.append(text)
        if text not in vocab:
            raise httpx.HTTPStatusError(
                "404", request=httpx.Request("POST", "http://x"), response=httpx.Response(404)
            )
        return vocab[text]

    monkeypatch.setattr(lt, "_tokenize", fake)
    return lt, calls


def test_tokenize_url_is_beside_v1() -> None:
    assert tokenize_url("http://127.0.0.1:8001/v1") == "http://127.0.0.1:8001/tokenize"
    assert tokenize_url("http://gpu:8000/v1/") == "http://gpu:8000/tokenize"


def test_ids_cover_bare_and_spaced_labels_and_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    lt, calls = _lookup(monkeypatch, VOCAB)
    assert lt.ids_for(["A", "B"]) == [32, 33, 362, 425]
    n = len(calls)
    assert lt.ids_for(["B", "A"]) == [32, 33, 362, 425] and len(calls) == n  # no new lookups
    assert lt.ids_for(["A", "B", "C"]) == [32, 33, 34, 356, 362, 425]


def test_a_multi_token_label_or_a_server_without_tokenize_means_the_grammar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lt, calls = _lookup(monkeypatch, VOCAB)
    assert lt.ids_for(["AB"]) is None
    n = len(calls)
    assert lt.ids_for(["A"]) is None and len(calls) == n  # remembered: no more lookups
    lt, _ = _lookup(monkeypatch, {})
    assert lt.ids_for(["A"]) is None


def test_an_unreachable_server_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    lt = LabelTokens(Settings(env="test"))
    state = {"down": True}

    def flaky(text: str, *_: object) -> list[int]:
        if state["down"]:
            raise httpx.ConnectError("refused")
        return VOCAB[text]

    monkeypatch.setattr(lt, "_tokenize", flaky)
    assert lt.ids_for(["A"]) is None
    state["down"] = False
    assert lt.ids_for(["A"]) == [32, 362]


def test_reranker_sends_token_ids_when_known_else_the_choice_grammar(
    monkeypatch: pytest.MonkeyPatch, profile: UserProfile, ctx: RequestContext, candidates: list[Candidate]
) -> None:
    lt, _ = _lookup(monkeypatch, VOCAB)
    client = FakeClient(lambda kw: logprob_response("A", {"A": -0.1, "B": -1.0, "C": -2.0}))
    s = Settings(env="test", llm={"retries": 0, "rerank_top_n": 3})
    out = LLMReranker(s.llm, PLACES, lt).rerank(llm_session(client, s), profile, ctx, candidates)
    assert out.error is None
    assert client.calls[0]["extra_body"] == {"allowed_token_ids": [32, 33, 34, 356, 362, 425]}
    lt_none, _ = _lookup(monkeypatch, {})
    client2 = FakeClient(lambda kw: logprob_response("A", {"A": -0.1}))
    LLMReranker(s.llm, PLACES, lt_none).rerank(llm_session(client2, s), profile, ctx, candidates)
    assert client2.calls[0]["extra_body"] == {"structured_outputs": {"choice": ["A", "B", "C"]}}


def test_a_hung_lookup_holds_no_request_past_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung /tokenize: the request doing the lookup gives up at its deadline, and one waiting
    for the lookup's lock gives up at its own, instead of queueing behind it (found by
    tests/integration/test_llm_faults.py: 2 s deadlines took 4 and 6 s)."""
    import threading
    import time

    lt = LabelTokens(Settings(env="test", llm={"timeout_s": 5}))

    def hung(text: str, timeout_s: float | None = None) -> list[int]:
        time.sleep(timeout_s or 5)
        raise httpx.ReadTimeout("timed out")

    monkeypatch.setattr(lt, "_tokenize", hung)
    took: list[float] = []

    def ask() -> None:
        t0 = time.monotonic()
        assert lt.ids_for(["A"], deadline=t0 + 0.5) is None
        took.append(time.monotonic() - t0)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(took) == 3 and max(took) < 0.8, took
