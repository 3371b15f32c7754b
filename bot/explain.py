"""Staff explain mode: why the assistant answered what it did.

Loads the trained model in-process, runs one conversation turn the way the
servers would (NLU, policy prediction, the real custom action), and shows the
intent and confidence, the route, the action, the facts used with their
sources, and the rendered reply. No servers are needed.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from bot.assistant import Assistant, get_assistant
from bot.crisis.detector import Detection
from bot.replies import Reply

MAX_ACTIONS_PER_TURN = 6


class _RecordingAssistant:
    """Proxy that remembers the replies an action obtained from the assistant."""

    def __init__(self, inner: Assistant) -> None:
        self._inner = inner
        self.replies: List[Reply] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if isinstance(result, Reply):
                self.replies.append(result)
            return result

        return call


@dataclass
class Explanation:
    text: str
    intent: str
    confidence: float
    ranking: List[Dict[str, Any]]
    routes: List[str]
    action: str
    reply: Optional[Reply]
    messages: List[str] = field(default_factory=list)
    crisis: Optional[Detection] = None

    def render(self) -> str:
        lines = [
            f"message    : {self.text}",
            f"intent     : {self.intent} ({self.confidence:.2f})",
            "runner-up  : "
            + ", ".join(f"{r['name']} ({r['confidence']:.2f})" for r in self.ranking[1:3]),
            f"route      : {', '.join(self.routes) or '(none named: both routes)'}",
            f"crisis     : {self.crisis.explain() if self.crisis else 'not checked'}",
            f"action     : {self.action}",
        ]
        if self.reply is not None:
            lines.append(f"reply kind : {self.reply.kind}; topic: {self.reply.topic or '-'}")
            if self.reply.search_score is not None and self.reply.kind == "clinic":
                lines.append(f"clinic     : a staff-approved clinic answer, similarity {self.reply.search_score:.2f} "
                             "to its example questions")
            elif self.reply.search_score is not None:
                lines.append(f"search     : best BM25 score {self.reply.search_score:.2f}")
            for fact in self.reply.facts:
                lines.append(f"fact       : {fact.id} [{'/'.join(fact.routes)}] from {fact.source.short_name}")
        lines.append("reply      :")
        lines += ["  " + line for message in self.messages for line in message.splitlines()]
        return "\n".join(lines)


class Explainer:
    """Holds the loaded model and one conversation, so follow-ups have context."""

    def __init__(self, *, model: Path, assistant: Optional[Assistant] = None) -> None:
        import logging

        from rasa.core.agent import Agent
        from rasa.utils.common import configure_logging_and_warnings
        from rasa.utils.log_utils import configure_structlog
        from rasa_sdk.executor import ActionExecutor

        configure_logging_and_warnings(logging.WARNING)
        configure_structlog(logging.WARNING)

        from rasa.utils.endpoints import EndpointConfig

        # The same responses as the servers: clinic values filled by bot.nlg.ClinicResponses.
        self.agent = Agent.load(str(model), generator=EndpointConfig(type="bot.nlg.ClinicResponses"))
        self.executor = ActionExecutor()
        self.executor.register_package("actions")
        self.assistant = assistant or get_assistant()
        self.sender_id = f"explain-{uuid.uuid4().hex[:8]}"

    async def explain(self, text: str) -> Explanation:
        from rasa.core.channels.channel import UserMessage
        from rasa.shared.core.events import ActionExecuted, SlotSet
        from rasa.shared.core.trackers import EventVerbosity
        from rasa_sdk import Tracker
        from rasa_sdk.executor import CollectingDispatcher

        processor = self.agent.processor
        tracker = await processor.log_message(UserMessage(text, sender_id=self.sender_id), should_save_tracker=False)
        parse = tracker.latest_message.parse_data
        routes = [e["value"] for e in parse.get("entities", []) if e.get("entity") == "route"]

        reply: Optional[Reply] = None
        rendered: List[str] = []
        actions: List[str] = []
        for _ in range(MAX_ACTIONS_PER_TURN):  # every action of the turn, as the server runs them
            prediction = processor.predict_next_with_tracker(tracker)
            action_name = max(prediction["scores"], key=lambda s: s["score"])["action"]
            if action_name == "action_listen":
                break
            actions.append(action_name)
            run = self.executor.actions.get(action_name)
            action = getattr(run, "__self__", None)
            if action is not None:
                recorder = _RecordingAssistant(self.assistant)
                action._assistant = recorder
                dispatcher = CollectingDispatcher()
                sdk_tracker = Tracker.from_dict(tracker.current_state(EventVerbosity.AFTER_RESTART))
                events = await action.run(dispatcher, sdk_tracker, processor.domain.as_dict())
                reply = recorder.replies[-1] if recorder.replies else reply
                for message in dispatcher.messages:
                    values = {k: v for k, v in message.items() if k not in ("response", "template")}
                    generated = await processor.nlg.generate(message["response"], tracker, "explain", **values)
                    rendered.append((generated or {}).get("text", ""))
                tracker.update(ActionExecuted(action_name))
                for event in events:
                    if event.get("event") == "slot":
                        tracker.update(SlotSet(event["name"], event["value"]))
            else:
                generated = await processor.nlg.generate(action_name, tracker, "explain")
                rendered.append((generated or {}).get("text", "") if generated else "")
                tracker.update(ActionExecuted(action_name))
        tracker.update(ActionExecuted("action_listen"))
        await processor.save_tracker(tracker)
        intent = parse.get("intent") or {}
        return Explanation(
            text=text,
            intent=intent.get("name") or "",
            confidence=float(intent.get("confidence") or 0.0),
            ranking=parse.get("intent_ranking") or [],
            routes=routes,
            action=" + ".join(actions) or "action_listen",
            reply=reply,
            messages=rendered,
            crisis=Detection.from_dict(parse.get("crisis")),
        )


def run_explain(*, model: Path, questions: List[str]) -> int:
    explainer = Explainer(model=model)
    loop = asyncio.new_event_loop()
    try:
        if questions:
            for question in questions:
                print(loop.run_until_complete(explainer.explain(question)).render(), "\n", flush=True)
            return 0
        print("Explain mode: type a patient question (empty line or Ctrl-D to quit).", flush=True)
        while True:
            try:
                question = input("patient> ").strip()
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if not question:
                return 0
            print(loop.run_until_complete(explainer.explain(question)).render(), "\n", flush=True)
    finally:
        loop.close()
