"""The conversational recommender: understanding (intent, understand, rules), grounding and state
(state), tools, replies (reply, guard, present) and the turn that ties them together (agent)."""

from agent.chat.agent import ChatAgent
from agent.chat.turn import ChatEvent, ChatTurn

__all__ = ["ChatAgent", "ChatEvent", "ChatTurn"]
