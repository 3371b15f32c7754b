"""Staff explain mode: why the assistant answered what it did.

Each question takes the patient's exact path, in this process: the same Rasa patches
(bot/rasa/patches.py), the same NLU graph and policies (the trained model), the same screening
of the message as the channels (bot/channels/guard.py), Rasa's own turn (``Agent.handle_message``
in the conversation's lock), the same tracker store class with the staff side's work, the real
custom actions through rasa-sdk's executor (what the action server runs; here called through an
in-process action endpoint instead of HTTP), and the same NLG. It then shows the intent and
confidence, the route, the crisis verdict, the actions, the facts used with their sources, and
the replies exactly as the REST channel returns them.

It records nothing: the conversation and any staff record of it go to a scratch folder that is
deleted when explain mode ends, never into the clinic's conversations or records.
"""
from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from rasa.utils.endpoints import EndpointConfig

from bot.answers.assistant import Assistant, get_assistant
from bot.crisis.detector import Detection
from bot.answers.replies import Reply

EXPLAIN_CHANNEL = "rest"  # explain shows what a patient gets over REST (the staff tools' channel)


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


class InProcessActions(EndpointConfig):
    """The action endpoint of explain mode: Rasa's RemoteAction posts its call here and gets
    rasa-sdk's executor's answer, as the action server would give it (through JSON both ways)."""

    def __init__(self, executor: Any, **kwargs: Any) -> None:
        super().__init__(url="in-process://actions", **kwargs)
        self.executor = executor

    async def request(self, method: str = "post", subpath: Optional[str] = None,
                      content_type: Optional[str] = "application/json", compress: bool = False,
                      **kwargs: Any) -> Any:
        call = json.loads(json.dumps(kwargs["json"]))
        return json.loads(json.dumps(await self.executor.run(call) or {}))


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
    sent: List[Dict[str, Any]] = field(default_factory=list)  # the replies as the REST channel sends them

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

        from bot.rasa import patches as rasa_patches
        from bot.staff.tracker_store import ClinicTrackerStore
        from bot.rasa.stores import create_conversation_schema

        configure_logging_and_warnings(logging.WARNING)
        configure_structlog(logging.WARNING)
        rasa_patches.apply()

        self._scratch = tempfile.TemporaryDirectory(prefix="explain-")
        conversations = f"sqlite:///{Path(self._scratch.name) / 'conversations.db'}"
        self.records_url = f"sqlite:///{Path(self._scratch.name) / 'records.db'}"
        create_conversation_schema(conversations)
        executor = ActionExecutor()
        executor.register_package("actions")
        self.recorder = _RecordingAssistant(assistant or get_assistant())
        for run in executor.actions.values():
            action = getattr(run, "__self__", None)
            if action is not None and hasattr(action, "_assistant"):
                action._assistant = self.recorder  # the real actions, remembering their replies
        # The servers' endpoints (endpoints.yml): the same NLG and tracker store; actions in-process.
        self.agent = Agent.load(str(model), generator=EndpointConfig(type="bot.rasa.nlg.ClinicResponses"),
                                tracker_store=ClinicTrackerStore(url=conversations),
                                action_endpoint=InProcessActions(executor, enable_selective_domain=True))
        self.sender_id = f"explain-{uuid.uuid4().hex[:8]}"
        self.history: List[Explanation] = []

    def close(self) -> None:
        self._scratch.cleanup()

    async def explain(self, text: str) -> Explanation:
        from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
        from rasa.shared.core.events import ActionExecuted, UserUttered

        from bot.channels.guard import screen_message
        from bot.staff.records import records_elsewhere

        output = CollectingOutputChannel()
        message = screen_message(UserMessage(text, output, self.sender_id, input_channel=EXPLAIN_CHANNEL))
        self.recorder.replies.clear()
        with records_elsewhere(self.records_url):
            await self.agent.handle_message(message)
        tracker = await self.agent.tracker_store.retrieve(self.sender_id)
        events = list(tracker.events) if tracker is not None else []
        turn = next((i for i in range(len(events) - 1, -1, -1) if isinstance(events[i], UserUttered)), None)
        parse: Dict[str, Any] = events[turn].parse_data if turn is not None else {}
        actions = [e.action_name for e in events[(turn or 0) + 1:]
                   if isinstance(e, ActionExecuted) and e.action_name != "action_listen"]
        routes = [e["value"] for e in parse.get("entities", []) if e.get("entity") == "route"]
        intent = parse.get("intent") or {}
        explanation = Explanation(
            text=text,
            intent=intent.get("name") or "",
            confidence=float(intent.get("confidence") or 0.0),
            ranking=parse.get("intent_ranking") or [],
            routes=routes,
            action=" + ".join(actions) or "action_listen",
            reply=self.recorder.replies[-1] if self.recorder.replies else None,
            messages=[m.get("text") or "" for m in output.messages],
            crisis=Detection.from_dict(parse.get("crisis")),
            sent=list(output.messages),
        )
        self.history.append(explanation)
        return explanation


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
        explainer.close()
