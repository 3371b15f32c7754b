"""Greeting (it carries the disclaimer, so it is an action rather than a plain response)."""
from __future__ import annotations

from typing import Text

from rasa_sdk import Tracker

from actions.common import AssistantAction
from bot.answers.replies import Reply


class ActionGreet(AssistantAction):
    def name(self) -> Text:
        return "action_greet"

    def reply(self, tracker: Tracker) -> Reply:
        return self.assistant.greeting()
