"""Shared plumbing for the actions: reading the turn, sending a reply safely."""
from __future__ import annotations

import abc
import dataclasses
import logging
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.answers.assistant import Assistant, Context, Question, get_assistant
from bot.knowledge.records import ROUTES
from bot.answers.replies import Message, Reply, outgoing, rated
from bot.staff import turns

logger = logging.getLogger(__name__)


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


def latest_intent(tracker: Tracker) -> Optional[Text]:
    return (tracker.latest_message.get("intent") or {}).get("name")


def _routes(entities: Any) -> Tuple[str, ...]:
    found: Dict[str, None] = {}
    for entity in entities or []:
        if entity.get("entity") == "route" and entity.get("value") in ROUTES:
            found.setdefault(entity["value"], None)
    return tuple(found)


def understood(tracker: Tracker) -> Tuple[Question, List[Question], Context]:
    """The latest message as the assistant reads it: the whole message, each question found in
    it (bot/understanding/questions.py, in the parse data), and what the conversation was about."""
    latest = tracker.latest_message
    intent = latest.get("intent") or {}
    ranking = [r for r in latest.get("intent_ranking") or [] if r.get("name") != intent.get("name")]
    runner_up = (ranking[0]["name"], float(ranking[0].get("confidence") or 0.0)) if ranking else None
    whole = Question(latest.get("text") or "", intent.get("name"), float(intent.get("confidence") or 0.0),
                     _routes(latest.get("entities")), runner_up=runner_up)
    parts = [
        Question(part.get("text") or "", (part.get("intent") or {}).get("name"),
                 float((part.get("intent") or {}).get("confidence") or 0.0), _routes(part.get("entities")))
        for part in latest.get("questions") or []
    ]
    return whole, parts, Context(tracker.get_slot("topic"), tracker.get_slot("last_route"))


def remember_search_terms(assistant: Assistant, tracker: Tracker) -> None:
    """The search terms the NLU graph read from the message and its questions (parse data
    ``search_terms``, bot.rasa.components.SearchTerms): the search uses them instead of parsing
    the same text again."""
    latest = tracker.latest_message
    for item in [latest] + list(latest.get("questions") or []):
        terms, text = item.get("search_terms"), item.get("text")
        if isinstance(terms, list) and text:
            assistant.index.remember_terms(text, [str(term) for term in terms])


def turn_of(tracker: Tracker) -> turns.Turn:
    latest = tracker.latest_message
    intent = latest.get("intent") or {}
    confidence = intent.get("confidence")
    return turns.Turn(sender_id=tracker.sender_id, channel=tracker.get_latest_input_channel() or "",
                      text=latest.get("text") or "", intent=intent.get("name"),
                      confidence=float(confidence) if confidence is not None else None,
                      message_id=latest.get("message_id"))


def previous_response(tracker: Tracker) -> Optional[Text]:
    """The domain response of the bot's last message before the patient's latest one."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                return None
            seen_user = True
        elif seen_user and event.get("event") == "bot":
            return (event.get("metadata") or {}).get("utter_action")
    return None


def concern(tracker: Tracker) -> bool:
    """The crisis layer marked the latest message a concern (bot/crisis/detector.py)."""
    verdict = tracker.latest_message.get("crisis") or {}
    return bool(verdict.get("concern")) and not verdict.get("crisis")


def send(dispatcher: CollectingDispatcher, reply: Reply, *, concerned: bool = False) -> List[Dict[Text, Any]]:
    """Utter every message of the reply (the disclaimer included) and remember the context."""
    for message in outgoing(reply, concern=concerned):
        dispatcher.utter_message(response=message.response, **message.values)
    events = [SlotSet("rating_offered", True)] if rated(reply) else []
    if reply.topic is None:
        return events
    last_route = reply.routes[0] if len(reply.routes) == 1 else None
    return events + [SlotSet("topic", reply.topic), SlotSet("last_route", last_route)]


class AssistantAction(Action, metaclass=abc.ABCMeta):
    """Base for the project's actions: subclasses only decide the reply.

    The assistant is injected (tests, explain mode) or the process-wide default.
    An unexpected error never reaches the patient as silence or a stack trace:
    it is logged (without message text) and the patient gets the fallback.
    """

    def __init__(self, assistant: Optional[Assistant] = None) -> None:
        self._assistant = assistant

    @property
    def assistant(self) -> Assistant:
        return self._assistant or get_assistant()

    @abc.abstractmethod
    def reply(self, tracker: Tracker) -> Reply:
        """The reply for this turn."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        try:
            remember_search_terms(self.assistant, tracker)
            reply = self.reply(tracker)
        except Exception as error:  # noqa: BLE001 - the patient must always get an answer
            logger.error("%s failed with %s; sending the fallback", self.name(), type(error).__name__)
            reply = self.assistant.fallback()
        turn = turn_of(tracker)
        declined = reply.kind in ("fallback", "out_of_scope")
        if (previous_response(tracker) == turns.ASK and turns.is_unanswered(turn, reply)
                and await turns.off_the_loop(turns.note_followup, sender_id=turn.sender_id, text=turn.text)):
            if declined:
                # The answer to "What were you looking for?": kept once, with the thumbs-down it
                # explains (never again as a decline), and thanked - not also declined.
                reply = Reply("followup", (Message(turns.NOTED),))
            else:  # a question we could answer after all: thanked, and answered
                await turns.off_the_loop(turns.record_reply, turn=turn, reply=reply)
                reply = dataclasses.replace(reply, messages=(Message(turns.NOTED),) + reply.messages)
        else:
            await turns.off_the_loop(turns.record_reply, turn=turn, reply=reply)
        return send(dispatcher, reply, concerned=concern(tracker))
