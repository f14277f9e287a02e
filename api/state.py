"""What the app keeps on ``app.state.chronotope``: built once in the lifespan, read by every request."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.chat import ChatAgent
from agent.service import RecommendationService
from agent.trace_writer import TraceWriter
from api.rate_limit import RateLimiter
from core.settings import Settings
from core.state_changes import latest_seq
from jobs.background_mining import BackgroundMiner
from retrieval.state_follower import StateFollower

log = logging.getLogger("chronotope.api")


@dataclass
class AppState:
    settings: Settings
    factory: sessionmaker[Session]
    service: RecommendationService
    chat: ChatAgent
    llm_warm_up: dict[str, Any] = field(default_factory=lambda: {"warmed": False, "reason": "not started"})
    follower: StateFollower | None = None  # keeps this worker on the store's state version
    traces: TraceWriter | None = None  # batched trace writes (None: written in the request)
    miner: BackgroundMiner | None = None  # re-mines users after new events
    limiter: RateLimiter | None = None  # per-key request rate (api.rate_limit_per_s)

    def serve_new_events(self, user_ids: Iterable[str]) -> None:
        """After a write: this worker serves it now (the others at their next poll), and the
        users' profiles are re-mined in the background."""
        users = sorted(set(user_ids))
        if self.follower is not None:
            with self.factory() as s:
                seq = latest_seq(s)  # at least the change this write committed
            self.follower.catch_up_to(seq, timeout_s=self.settings.api.state_poll_s * 10)
        else:
            with self.factory() as s:
                self.service.retriever.refresh_users(s, users)
        if self.miner is not None and users:
            self.miner.submit(users)

    def user_deleted(self, user_id: str) -> None:
        """This worker stops serving the user now; the others at their next poll."""
        self.service.retriever.forget_user(user_id)

    def close(self) -> None:
        """Graceful shutdown: every accepted trace is stored, background mining stops."""
        if self.traces is not None and not self.traces.flush(timeout=30):
            log.error("shutdown: %d trace(s) still unwritten after 30 s", self.traces.pending())
        if self.miner is not None:
            self.miner.close()
