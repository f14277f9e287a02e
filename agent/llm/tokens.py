"""Counting tokens the way the served model does, for history budgets and usage figures.

The embedded model's ``tokenizer.json`` is read with the ``tokenizers`` library (fast, no model
load). An external server's tokenizer is unknown here; then a length estimate is used (about four
characters a token for English), which is only ever used to trim history, never to bill.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
CHARS_PER_TOKEN = 4.0


class TokenCounter:
    def __init__(self, tokenizer_json: Path | None = None) -> None:
        self._tok: Any = None
        self.exact = False
        if tokenizer_json is not None and tokenizer_json.exists():
            try:
                from tokenizers import Tokenizer

                self._tok = Tokenizer.from_file(str(tokenizer_json))
                self.exact = True
            except Exception as exc:  # a broken file must not stop the chat: estimate instead
                log.warning("tokenizer %s unusable (%s); estimating token counts", tokenizer_json, exc)
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self._tok is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        with self._lock:
            return len(self._tok.encode(text, add_special_tokens=False).ids)
