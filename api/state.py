"""What the app keeps on ``app.state.chronotope``: built once in the lifespan, read by every request."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from agent.assembly import Services
from agent.chat import ChatAgent
from agent.pipeline import RecommendPipeline
from agent.profiles import Profiles
from agent.records import Records
from api.rate_limit import RateLimiter
from core.experiments import ExperimentsConfig
from core.settings import Settings
from core.state_changes import latest_seq
from retrieval.state_follower import StateFollower

log = logging.getLogger("chronotope.api")


class Remining(Protocol):
    """Re-mines users' profiles after new events, off the request path (jobs.background_mining
    is the product's; the composition root passes it in, so the API does not import batch jobs)."""

    def submit(self, user_ids: Iterable[str]) -> None: ...

    def pending(self) -> int: ...

    def close(self) -> None: ...


@dataclass
class AppState:
    settings: Settings
    services: Services
    llm_warm_up: dict[str, Any] = field(default_factory=lambda: {"warmed": False, "reason": "not started"})
    follower: StateFollower | None = None  # keeps this worker on the store's state version
    miner: Remining | None = None  # re-mines users after new events
    limiter: RateLimiter | None = None  # per-key request rate (api.rate_limit_per_s)

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.services.factory

    @property
    def pipeline(self) -> RecommendPipeline:
        return self.services.pipeline

    @property
    def records(self) -> Records:
        return self.services.records

    @property
    def chat(self) -> ChatAgent:
        return self.services.chat

    @property
    def profiles(self) -> Profiles:
        return Profiles(self.services.domain, self.services.retriever)

    @property
    def experiments(self) -> ExperimentsConfig:
        return self.services.pipeline.users.experiments

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
                self.services.retriever.refresh_users(s, users)
        if self.miner is not None and users:
            self.miner.submit(users)

    def user_deleted(self, user_id: str) -> None:
        """This worker stops serving the user now; the others at their next poll."""
        self.services.retriever.forget_user(user_id)

    def close(self) -> None:
        """Graceful shutdown: every accepted trace is stored, background mining stops."""
        traces = self.services.traces
        if traces is not None and not traces.flush(timeout=30):
            log.error("shutdown: %d trace(s) still unwritten after 30 s", traces.pending())
        if self.miner is not None:
            self.miner.close()
