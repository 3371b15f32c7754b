"""Greeting (it carries the disclaimer, so it is an action rather than a plain response)."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import AssistantAction, send


class ActionGreet(AssistantAction, Action):
    def name(self) -> Text:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        return send(dispatcher, self.assistant.greeting())
