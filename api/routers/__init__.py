"""One router per area; handlers speak HTTP only and call the services on the app state."""

from fastapi import APIRouter

from api.routers import chat, events, experiments, health, items, openai_compat, recommendations, users


def all_routers() -> list[APIRouter]:
    return [
        health.router,
        events.router,
        items.router,
        recommendations.router,
        users.router,
        chat.router,
        openai_compat.router,
        experiments.router,
    ]
