"""Answering questions from the knowledge base."""
from __future__ import annotations

from typing import Text

from rasa_sdk import Tracker

from actions.common import AssistantAction, latest_intent, latest_text, understood
from bot.answers.replies import Reply


class ActionAnswerQuestion(AssistantAction):
    """Each question of the message (up to two topics): topic from the intent, route from the
    entity, the conversation's route for a follow-up, both side by side otherwise."""

    def name(self) -> Text:
        return "action_answer_question"

    def reply(self, tracker: Tracker) -> Reply:
        whole, parts, context = understood(tracker)
        return self.assistant.respond(question=whole, parts=parts, context=context)


class ActionFallback(AssistantAction):
    """Unsure: a clear question inside the message, else an approved clinic answer, else the
    knowledge-base search, else say so; out of scope: an approved clinic answer, else say so and
    offer topics."""

    def name(self) -> Text:
        return "action_fallback"

    def reply(self, tracker: Tracker) -> Reply:
        if latest_intent(tracker) == "out_of_scope":
            return self.assistant.decline(text=latest_text(tracker))
        whole, parts, context = understood(tracker)
        return self.assistant.respond(question=whole, parts=parts, context=context)
