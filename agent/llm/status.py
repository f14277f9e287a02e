"""Is the LLM reachable, and which model does it serve?"""

from __future__ import annotations

from typing import Any

import httpx

from core.settings import Settings


def llm_status(settings: Settings, timeout_s: float = 2.0) -> dict[str, Any]:
    base = settings.resolved_llm_base_url
    out: dict[str, Any] = {
        "base_url": base,
        "embedded": settings.llm_is_embedded,
        "enabled": settings.llm.enabled,
        "reachable": False,
        "model": None,
        "error": None,
    }
    try:
        r = httpx.get(
            f"{base.rstrip('/')}/models",
            headers={"Authorization": f"Bearer {settings.llm.api_key.get_secret_value()}"},
            timeout=timeout_s,
        )
        r.raise_for_status()
        models = [m.get("id") for m in r.json().get("data", [])]
        out["reachable"] = True
        out["model"] = (
            settings.llm.model_name if settings.llm.model_name in models else (models[0] if models else None)
        )
    except (httpx.HTTPError, ValueError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out
