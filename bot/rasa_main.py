"""Rasa's command line with the project's fixes applied: `python -m bot.rasa_main run ...`.

* Each question of a message is understood as well as the whole message (bot/questions.py):
  the parts go through the same NLU graph in one batch.
* A turn never ends in silence: when the action server is unreachable, slow (over
  ACTION_TIMEOUT_SECONDS) or erroring, Rasa 3.6 logs the error and sends nothing. Here the
  custom action is replaced by a polite apology with the clinic's contact (a domain response
  rendered in the Rasa server) and the disclaimer. Crisis replies never call the action server.
* A conversation store that cannot be reached fails the turn (the patient gets the apology)
  instead of silently starting the conversation afresh; a message resent after a lost
  connection gets the reply it already had instead of a second turn.
* The staff side (bot/staff/server.py): a "forget me" confirmation counts only right after its
  question (otherwise it is read as "forget me" and the question is asked again); a confirmed
  "forget me" deletes the conversation in place of the turn's save (inside its lock), crisis
  turns are counted, the first reply of a conversation is followed by the privacy notice, and
  the retention purge runs on a schedule.
* Rasa 3.6 validates every action-server response with `jsonschema.validate`,
  which re-checks the (large, `$ref`-heavy) events schema against the
  metaschema on every call — about two thirds of the CPU of a whole turn here.
  The same schema is checked once and the compiled validator reused: what is
  accepted or rejected, and the error raised, are unchanged.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Optional, Text


@lru_cache(maxsize=1)
def _action_response_validator():
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _validate_action_result(self, result: Dict[Text, Any]) -> bool:
    from jsonschema import ValidationError, exceptions
    from rasa.shared.constants import DOCS_BASE_URL

    error = exceptions.best_match(_action_response_validator().iter_errors(result))
    if error is None:
        return True
    if isinstance(error, ValidationError):
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
    raise error




def _parse_with_questions(self, message, tracker, only_output_properties: bool = True):
    """MessageProcessor._parse_message_with_graph, also understanding each question of the
    message: the parts go through the same NLU graph in one batch with the whole message
    (bot/questions.py). The parse data gains ``questions``; a message whose story outweighs its
    question is answered by the question's intent (a crisis found anywhere still wins: the crisis
    layer has already read the whole message and its sentences). A "forget me" confirmation
    that does not answer its question is read as "forget me" (bot/staff/server.py)."""
    from bot.staff.server import confirmation_in_context

    return confirmation_in_context(_parse_questions(self, message, tracker, only_output_properties), tracker)


def _parse_questions(self, message, tracker, only_output_properties: bool):
    from rasa.core.channels.channel import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
    from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY

    from bot.crisis.detector import CRISIS_INTENTS
    from bot.questions import main_intent, part_summary, question_parts, sentences_of

    text = message.text or ""
    parts = [] if text.startswith("/") else question_parts(sentences_of(text))
    if not parts:
        return _ORIGINAL_PARSE(self, message, tracker, only_output_properties)
    messages = [message] + [UserMessage(part, sender_id=message.sender_id, metadata=message.metadata) for part in parts]
    try:
        results = self.graph_runner.run(inputs={PLACEHOLDER_MESSAGE: messages, PLACEHOLDER_TRACKER: tracker},
                                        targets=[self.model_metadata.nlu_target])
    except Exception as error:  # noqa: BLE001 - understanding the parts is a bonus; the whole must go on
        import logging

        logging.getLogger("bot.rasa_main").error("questions: parsing the parts failed (%s)", type(error).__name__)
        return _ORIGINAL_PARSE(self, message, tracker, only_output_properties)
    parsed = [m.as_dict(only_output_properties=only_output_properties) for m in results[self.model_metadata.nlu_target]]
    parse_data = {"text": "", INTENT: {"name": None, "confidence": 0.0}, "entities": [], **parsed[0]}
    questions = [part_summary(part, data) for part, data in zip(parts, parsed[1:])]
    parse_data["questions"] = questions
    better = main_intent(parse_data, questions)
    if better and (parse_data[INTENT] or {}).get("name") not in CRISIS_INTENTS:
        ranking = [r for r in parse_data.get(INTENT_RANKING_KEY) or [] if r.get("name") != better["name"]]
        parse_data[INTENT] = better
        parse_data[INTENT_RANKING_KEY] = [better] + ranking
    return parse_data


_ORIGINAL_PARSE = None


def _never_silent(run):
    """Wrap RemoteAction.run: a time limit, and an apology instead of silence on any failure."""
    import asyncio
    import functools
    import logging

    from rasa.core.actions.action import ActionExecutionRejection, create_bot_utterance

    from bot.wording import APOLOGY_RESPONSES

    logger = logging.getLogger("bot.rasa_main")

    @functools.wraps(run)
    async def safe_run(self, output_channel, nlg, tracker, domain):
        from bot.settings import get_settings

        try:
            return await asyncio.wait_for(run(self, output_channel, nlg, tracker, domain),
                                          timeout=get_settings().action_timeout_seconds)
        except ActionExecutionRejection:
            raise
        except Exception as error:  # noqa: BLE001 - the patient gets an apology, never silence
            logger.error("action %s failed (%s); the patient gets the apology", self.name(), type(error).__name__)
            events = []
            for name in APOLOGY_RESPONSES:
                draft = await nlg.generate(name, tracker, output_channel.name())
                if draft:
                    events.append(create_bot_utterance(dict(draft)))
            return events

    safe_run.__wrapped_by_bot__ = True
    return safe_run


def _store_failures_are_loud() -> None:
    """Rasa wraps the tracker store in a fail-safe that, when the store cannot be read, logs the
    error and starts the conversation afresh: the patient's context silently lost (and when it
    cannot save, keeps the turn in this process's memory only). ``StoreUnavailable`` (the store
    tried and gave up, bot/stores.py) goes through instead: the turn fails, and the channel sends
    the apology (bot/channels/guard.py)."""
    from rasa.core.tracker_store import FailSafeTrackerStore

    from bot.stores import StoreUnavailable

    if getattr(FailSafeTrackerStore, "__loud_by_bot__", False):
        return

    def loud(method):
        async def call(self, *args, **kwargs):
            try:
                return await getattr(self._tracker_store, method.__name__)(*args, **kwargs)
            except StoreUnavailable:
                raise
            except Exception:  # noqa: BLE001 - anything else: Rasa's own handling, as before
                return await method(self, *args, **kwargs)

        return call

    for name in ("retrieve", "retrieve_full_tracker", "save"):
        setattr(FailSafeTrackerStore, name, loud(getattr(FailSafeTrackerStore, name)))
    FailSafeTrackerStore.__loud_by_bot__ = True


def answered_before(tracker, message_id: str, text: Optional[str]):
    """The bot messages that answered the user message ``message_id`` with this ``text`` in this
    conversation, or None when it has not been answered (not received, its turn never finished,
    or the id was reused for another text - which gets a turn of its own, crisis check included)."""
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.constants import ACTION_LISTEN_NAME

    replies, found = [], False
    for event in tracker.events:
        if isinstance(event, UserUttered):
            if found:
                return replies
            found = event.message_id == message_id and event.text == text
        elif found and isinstance(event, BotUttered):
            replies.append({"text": event.text, **{k: v for k, v in (event.data or {}).items() if v is not None}})
        elif found and isinstance(event, ActionExecuted) and event.action_name == ACTION_LISTEN_NAME:
            return replies
    return replies if found else None


async def _handle_once(self, message):
    """MessageProcessor.handle_message, answering a resent message (a client that lost its
    connection before the reply arrived and sends it again with the same id and ``resend``) with
    the reply it already got, instead of a second turn. It runs inside the conversation's lock,
    so a resend that overtakes its original waits for it and then gets its reply."""
    from bot.channels.guard import RESEND

    if message.message_id and (message.metadata or {}).get(RESEND) is True:
        tracker = await self.tracker_store.retrieve(message.sender_id)
        replies = answered_before(tracker, message.message_id, message.text) if tracker is not None else None
        if replies is not None:
            for reply in replies:
                await message.output_channel.send_response(message.sender_id, reply)
            from rasa.core.channels.channel import CollectingOutputChannel

            return message.output_channel.messages if isinstance(message.output_channel, CollectingOutputChannel) else None
    from bot.staff.server import FIRST_REPLY, send_privacy_notice

    FIRST_REPLY.set(None)
    replies = await _ORIGINAL_HANDLE(self, message)
    await send_privacy_notice(self, message)
    return replies


_ORIGINAL_HANDLE = None


async def _save_or_forget(self, tracker) -> None:
    from bot.staff.server import save_or_forget

    await save_or_forget(self, tracker, _ORIGINAL_SAVE)


_ORIGINAL_SAVE = None


def _with_upkeep(configure_app):
    """rasa.core.run.configure_app, adding the staff side's listener (the purge schedule)."""
    import functools

    @functools.wraps(configure_app)
    def configure(*args, **kwargs):
        from bot.staff.server import start_upkeep

        kwargs["server_listeners"] = list(kwargs.get("server_listeners") or []) + [(start_upkeep, "after_server_start")]
        return configure_app(*args, **kwargs)

    configure.__wrapped_by_bot__ = True
    return configure


def apply_fixes() -> None:
    global _ORIGINAL_PARSE, _ORIGINAL_HANDLE, _ORIGINAL_SAVE
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor

    if _ORIGINAL_PARSE is None:
        _ORIGINAL_PARSE = MessageProcessor._parse_message_with_graph
        MessageProcessor._parse_message_with_graph = _parse_with_questions
    if _ORIGINAL_HANDLE is None:
        _ORIGINAL_HANDLE = MessageProcessor.handle_message
        MessageProcessor.handle_message = _handle_once
    if _ORIGINAL_SAVE is None:
        _ORIGINAL_SAVE = MessageProcessor.save_tracker
        MessageProcessor.save_tracker = _save_or_forget
    import rasa.core.run

    if not getattr(rasa.core.run.configure_app, "__wrapped_by_bot__", False):
        rasa.core.run.configure_app = _with_upkeep(rasa.core.run.configure_app)
    _store_failures_are_loud()

    RemoteAction._validate_action_result = _validate_action_result
    if not getattr(RemoteAction.run, "__wrapped_by_bot__", False):
        RemoteAction.run = _never_silent(RemoteAction.run)


def configure_logs(command: str) -> None:
    """The project's JSON logs without patient text (bot/logs.py), instead of Rasa's own set-up.
    The staff shell writes them to DATA_DIR/log/shell.log, away from the conversation."""
    from bot.logs import configure_logging

    if command == "shell":
        from bot import runtime
        from bot.settings import get_settings

        settings = get_settings()
        runtime.private_dir(settings.log_dir)
        configure_logging("rasa-shell", stream=(settings.log_dir / "shell.log").open("a", encoding="utf-8"))
    else:
        configure_logging(f"rasa-{command}")


def main() -> None:
    import sys

    command = sys.argv[1] if len(sys.argv) > 1 else "rasa"
    configure_logs(command)  # before Rasa's imports, so their warnings are logged (or dropped) as JSON too
    import rasa.__main__ as rasa_cli
    import rasa.utils.io

    apply_fixes()
    rasa.utils.io.configure_colored_logging = lambda *args, **kwargs: None  # our JSON lines stay the only format
    rasa_cli.configure_structlog = lambda log_level=None: configure_logs(command)
    rasa_cli.main()


if __name__ == "__main__":
    main()
