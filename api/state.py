"""What the app keeps on ``app.state.chronotope``: built once in the lifespan, read by every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.chat import ChatAgent
from agent.service import RecommendationService
from core.settings import Settings


@dataclass
class AppState:
    settings: Settings
    factory: sessionmaker[Session]
    service: RecommendationService
    chat: ChatAgent
    llm_warm_up: dict[str, Any] = field(default_factory=lambda: {"warmed": False, "reason": "not started"})
