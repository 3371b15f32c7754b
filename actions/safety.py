"""Personal-advice replies. (Crisis replies are rules with domain responses: data/rules/safety.yml.)"""
from __future__ import annotations

from typing import Text

from rasa_sdk import Tracker

from actions.common import AssistantAction, latest_text, routes_in_latest_message, single_route
from bot.answers.replies import Reply


class ActionPersonalAdvice(AssistantAction):
    """No individual advice: refer to the clinician, with general facts where the KB has them."""

    def name(self) -> Text:
        return "action_personal_advice"

    def reply(self, tracker: Tracker) -> Reply:
        route = single_route(routes_in_latest_message(tracker))
        return self.assistant.personal_advice(text=latest_text(tracker), route=route)
