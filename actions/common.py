"""Shared plumbing for the actions: reading the turn, sending a reply."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.assistant import Assistant, get_assistant
from bot.knowledge.records import ROUTES
from bot.replies import Reply, outgoing


class AssistantAction:
    """Mixin: the assistant is injected (tests) or the process-wide default."""

    def __init__(self, assistant: Optional[Assistant] = None) -> None:
        self._assistant = assistant

    @property
    def assistant(self) -> Assistant:
        return self._assistant or get_assistant()


def routes_in_latest_message(tracker: Tracker) -> List[str]:
    """Route ids named in the user's latest message, in order, without repeats."""
    found: Dict[str, None] = {}
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == "route" and entity.get("value") in ROUTES:
            found.setdefault(entity["value"], None)
    return list(found)


def single_route(routes: List[str]) -> Optional[str]:
    """The route asked about, or None for a comparison (none or both named)."""
    return routes[0] if len(routes) == 1 else None


def latest_text(tracker: Tracker) -> Text:
    return tracker.latest_message.get("text") or ""


def send(dispatcher: CollectingDispatcher, reply: Reply) -> List[Dict[Text, Any]]:
    """Utter every message of the reply (the disclaimer included) and remember the context."""
    for message in outgoing(reply):
        dispatcher.utter_message(response=message.response, **message.values)
    if reply.topic is None:
        return []
    last_route = reply.routes[0] if len(reply.routes) == 1 else None
    return [SlotSet("topic", reply.topic), SlotSet("last_route", last_route)]
