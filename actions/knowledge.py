"""Answering questions from the knowledge base."""
from __future__ import annotations

from typing import Text

from rasa_sdk import Tracker

from actions.common import AssistantAction, latest_intent, latest_text, routes_in_latest_message, single_route
from bot.assistant import FOLLOW_UP_INTENT, topic_for_intent
from bot.replies import Reply


class ActionAnswerQuestion(AssistantAction):
    """Topic from the intent, route from the entity; both routes side by side when none is named."""

    def name(self) -> Text:
        return "action_answer_question"

    def reply(self, tracker: Tracker) -> Reply:
        intent = latest_intent(tracker)
        routes = routes_in_latest_message(tracker)
        if intent == FOLLOW_UP_INTENT:
            return self.assistant.follow_up(
                routes=routes, last_topic=tracker.get_slot("topic"), last_route=tracker.get_slot("last_route")
            )
        topic = topic_for_intent(intent, self.assistant.topic_ids())
        if topic is None:
            return self.assistant.understand_or_fallback(text=latest_text(tracker), route=single_route(routes))
        return self.assistant.answer(topic=topic, route=single_route(routes))


class ActionFallback(AssistantAction):
    """Low confidence: try the knowledge-base search; out of scope: say so and offer topics."""

    def name(self) -> Text:
        return "action_fallback"

    def reply(self, tracker: Tracker) -> Reply:
        if latest_intent(tracker) == "out_of_scope":
            return self.assistant.fallback(out_of_scope=True)
        route = single_route(routes_in_latest_message(tracker))
        return self.assistant.understand_or_fallback(text=latest_text(tracker), route=route)
