"""Online experiments for admins: the configuration served and the per-arm report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from api.deps import CurrentKey, SessionDep, State

router = APIRouter(tags=["experiments"])


@router.get("/v1/admin/experiments")
def experiments(key: CurrentKey, state: State) -> dict[str, Any]:
    """The experiments this server assigns users to (from CHRONOTOPE_EXPERIMENTS_FILE)."""
    key.require_admin()
    cfg = state.experiments
    return {"file": str(state.settings.experiments_file or "") or None, **cfg.model_dump()}


@router.get("/v1/admin/experiments/report")
def report(
    key: CurrentKey,
    state: State,
    session: SessionDep,
    experiment: str | None = Query(None, max_length=40, description="One experiment (default: all)."),
    since: datetime | None = Query(None, description="Only recommendations served since (ISO time)."),
) -> dict[str, Any]:
    """Per-arm click, accept and reject rates with 95% intervals; each arm against the first."""
    from agent.experiment_report import experiment_report

    key.require_admin()
    return experiment_report(session, state.experiments, experiment, since)
