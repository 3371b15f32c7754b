"""Crisis and personal-advice replies."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import AssistantAction, latest_text, routes_in_latest_message, send, single_route


class ActionCrisis(AssistantAction, Action):
    """Emergency number, crisis line and clinic contact; no knowledge answer this turn."""

    def name(self) -> Text:
        return "action_crisis"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        return send(dispatcher, self.assistant.crisis())


class ActionPersonalAdvice(AssistantAction, Action):
    """No individual advice: refer to the clinician, with general facts where the KB has them."""

    def name(self) -> Text:
        return "action_personal_advice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        route = single_route(routes_in_latest_message(tracker))
        return send(dispatcher, self.assistant.personal_advice(text=latest_text(tracker), route=route))
