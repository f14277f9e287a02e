"""What the app keeps on ``app.state.chronotope``: built once in the lifespan, read by every request."""

from __future__ import annotations

from dataclasses import dataclass

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
