"""Answering questions from the knowledge base."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import AssistantAction, latest_text, routes_in_latest_message, send, single_route
from bot.assistant import FOLLOW_UP_INTENT, topic_for_intent


class ActionAnswerQuestion(AssistantAction, Action):
    """Topic from the intent, route from the entity; both routes side by side when none is named."""

    def name(self) -> Text:
        return "action_answer_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        routes = routes_in_latest_message(tracker)
        if intent == FOLLOW_UP_INTENT:
            reply = self.assistant.follow_up(
                routes=routes,
                last_topic=tracker.get_slot("topic"),
                last_route=tracker.get_slot("last_route"),
            )
        else:
            topic = topic_for_intent(intent, self.assistant.topic_ids())
            if topic is None:
                reply = self.assistant.understand_or_fallback(
                    text=latest_text(tracker), route=single_route(routes)
                )
            else:
                reply = self.assistant.answer(topic=topic, route=single_route(routes))
        return send(dispatcher, reply)


class ActionFallback(AssistantAction, Action):
    """Low confidence: try the knowledge-base search; out of scope: say so and offer topics."""

    def name(self) -> Text:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "out_of_scope":
            reply = self.assistant.fallback(out_of_scope=True)
        else:
            route = single_route(routes_in_latest_message(tracker))
            reply = self.assistant.understand_or_fallback(text=latest_text(tracker), route=route)
        return send(dispatcher, reply)
