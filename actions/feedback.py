"""Thumbs up / down on the latest answer (the buttons under every knowledge answer)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import latest_intent
from bot.staff import turns


def text_of(tracker: Tracker, message_id: str) -> Optional[str]:
    """The latest patient message with this id (ids may be reused), unless it was a crisis."""
    from bot.crisis.detector import CRISIS_INTENTS

    for event in reversed(tracker.events):
        if event.get("event") == "user" and event.get("message_id") == message_id:
            if ((event.get("parse_data") or {}).get("intent") or {}).get("name") in CRISIS_INTENTS:
                return None
            return event.get("text")
    return None


class ActionFeedback(Action):
    def name(self) -> Text:
        return "action_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        value = 1 if latest_intent(tracker) == "feedback_up" else -1
        response = await turns.off_the_loop(turns.rate_latest, sender_id=tracker.sender_id, value=value,
                                            text_of=lambda message_id: text_of(tracker, message_id))
        dispatcher.utter_message(response=response)
        return []
