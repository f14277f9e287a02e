"""Token ids of the rerank labels, read from the serving vLLM's own tokenizer (``POST /tokenize``).

Why: constraining the one-token answer with ``allowed_token_ids`` costs nothing, while a
``structured_outputs`` choice compiles a grammar per label set on the server (tens of seconds on
2 CPU cores, for every distinct number of candidates). A server without ``/tokenize`` (not vLLM)
or a label that is not a single token makes the lookup return None; the caller then falls back
to the grammar."""

from __future__ import annotations

import logging
import threading
import time

import httpx

from agent.llm.client import server_root
from core.settings import Settings

log = logging.getLogger(__name__)


def tokenize_url(base_url: str) -> str:
    """vLLM serves /tokenize beside /v1, not under it."""
    return server_root(base_url) + "/tokenize"


class LabelTokens:
    """Caches label → token ids for one server; thread-safe; one lookup per label ever."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ids: dict[str, list[int]] = {}
        self._unavailable = False
        self._lock = threading.Lock()

    def _tokenize(self, text: str, timeout_s: float | None = None) -> list[int]:
        r = httpx.post(
            tokenize_url(self.settings.resolved_llm_base_url),
            json={"model": self.settings.llm.model_name, "prompt": text, "add_special_tokens": False},
            headers={"Authorization": f"Bearer {self.settings.llm.api_key.get_secret_value()}"},
            timeout=timeout_s or self.settings.llm.timeout_s,
        )
        r.raise_for_status()
        return [int(t) for t in r.json()["tokens"]]

    def ids_for(self, labels: list[str], deadline: float | None = None) -> list[int] | None:
        """Allowed token ids for answering with one of ``labels`` (bare or with a leading space),
        or None when the server cannot tell us (use the grammar instead) or not before
        ``deadline`` (time.monotonic): a hung server must not hold a request past its deadline,
        nor make the requests behind it wait for the lookup one after another."""
        wait = -1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
        if not self._lock.acquire(timeout=wait):
            return None  # another request is looking them up and has not finished in time
        try:
            if self._unavailable:
                return None
            try:
                for lab in labels:
                    if lab not in self._ids:
                        self._ids[lab] = self._label_ids(lab, deadline)
            except (httpx.HTTPStatusError, KeyError, ValueError) as exc:  # the server cannot tell us
                log.info("label token ids unavailable (%s); constraining with a grammar instead", exc)
                self._unavailable = True
                return None
            except (httpx.HTTPError, TimeoutError):  # unreachable or slow now: the call degrades
                return None
            return sorted({t for lab in labels for t in self._ids[lab]})
        finally:
            self._lock.release()

    def _label_ids(self, label: str, deadline: float | None = None) -> list[int]:
        bare = self._tokenize(label, self._left(deadline))
        if len(bare) != 1:
            raise ValueError(f"label {label!r} is not a single token")
        spaced = self._tokenize(" " + label, self._left(deadline))
        return sorted({bare[0], *(spaced if len(spaced) == 1 else [])})

    def _left(self, deadline: float | None) -> float | None:
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0.05:
            raise TimeoutError("no time left to look up label tokens")
        return min(left, self.settings.llm.timeout_s)
