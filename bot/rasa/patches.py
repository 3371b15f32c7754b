"""The only changes to Rasa's own code, for Rasa 3.6.21 exactly: applied by bot/rasa/main.py.

Everything else the project adds goes through Rasa's extension points (graph components in
config.yml, the tracker store, lock store and NLG in endpoints.yml, the channels in
credentials.yml). What is left here has no extension point in Rasa 3.6:

* ``RemoteAction.run`` - a turn never ends in silence: when the action server is unreachable,
  slow (over ACTION_TIMEOUT_SECONDS) or erroring, Rasa 3.6 logs the error and sends nothing.
  Here the patient gets a polite apology with the clinic's contact (domain responses rendered
  in the Rasa server). The action endpoint has no timeout setting and no error hook.
* ``RemoteAction._validate_action_result`` - Rasa re-checks the (large, ``$ref``-heavy) events
  schema against the metaschema on every action-server response: about two thirds of the CPU
  of a whole turn here. The schema is checked once and the compiled validator reused; what is
  accepted or rejected, and the error raised, are unchanged.
* ``FailSafeTrackerStore`` (``retrieve``, ``retrieve_full_tracker``, ``save``) - the Agent
  always wraps the configured tracker store in it, and it catches every error: a store that
  cannot be read starts the conversation afresh, its context silently lost. ``StoreUnavailable``
  (bot/rasa/stores.py) goes through instead: the turn fails and the channel sends the apology.
* ``MessageProcessor.handle_message`` - a message resent after a lost connection gets the reply
  it already had (inside the conversation's lock, which only the processor holds), and the first
  reply of a conversation is followed by the privacy notice (the tracker store notes the first
  reply, bot/staff/tracker_store.py). Rasa 3.6 has no hook around a turn that can send messages.
* Rasa's logging set-up (``configure_colored_logging``, ``configure_structlog``) - replaced by the
  project's JSON lines without patient text (bot/ops/logs.py); Rasa's command line always calls them.

``apply`` refuses any other Rasa version (``UnsupportedRasa``): each patch replaces a method
whose code was read for this version, so an upgrade must re-read them, not break silently.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Dict, List, Optional, Text

RASA_VERSION = "3.6.21"  # the version every patch below was written against (requirements.txt)

logger = logging.getLogger("bot.rasa.patches")


class UnsupportedRasa(RuntimeError):
    """Rasa is not the version these patches were written for."""


def check_rasa_version(version: Optional[str] = None) -> None:
    if version is None:
        import rasa

        version = rasa.__version__
    if version != RASA_VERSION:
        raise UnsupportedRasa(f"bot/rasa/patches.py was written for Rasa {RASA_VERSION}, not {version}: "
                              "re-read each patched method in the new version before changing RASA_VERSION")


# --- the action server's responses -------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _action_response_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
    """RemoteAction._validate_action_result with the schema checked once."""
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


def never_silent(run: Callable[..., Any]) -> Callable[..., Any]:
    """RemoteAction.run with a time limit, and an apology instead of silence on any failure."""
    import asyncio

    from rasa.core.actions.action import ActionExecutionRejection, create_bot_utterance

    from bot.answers.wording import APOLOGY_RESPONSES

    @functools.wraps(run)
    async def safe_run(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> List[Any]:
        from bot.ops.settings import get_settings

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

    return safe_run


# --- the tracker store's fail-safe wrapper -----------------------------------------------------

def loud(method: Callable[..., Any]) -> Callable[..., Any]:
    """A FailSafeTrackerStore method that lets ``StoreUnavailable`` through."""
    from bot.rasa.stores import StoreUnavailable

    @functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._tracker_store, method.__name__)(*args, **kwargs)
        except StoreUnavailable:
            raise
        except Exception:  # noqa: BLE001 - anything else: Rasa's own handling, as before
            return await method(self, *args, **kwargs)

    return call


# --- one turn ----------------------------------------------------------------------------------

def answered_before(tracker: Any, message_id: str, text: Optional[str]) -> Optional[List[Dict[str, Any]]]:
    """The bot messages that answered the user message ``message_id`` with this ``text`` in this
    conversation, or None when it has not been answered (not received, its turn never finished,
    or the id was reused for another text - which gets a turn of its own, crisis check included)."""
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

    replies: List[Dict[str, Any]] = []
    found = False
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


def handled_once(handle: Callable[..., Any]) -> Callable[..., Any]:
    """MessageProcessor.handle_message answering a resent message (same id, ``resend`` in its
    metadata) with the reply it already got, and following a conversation's first reply with
    the privacy notice. It runs inside the conversation's lock, so a resend that overtakes its
    original waits for it and then gets its reply."""
    from rasa.core.channels.channel import CollectingOutputChannel

    from bot.channels.guard import RESEND
    from bot.staff.server import FIRST_REPLY, send_privacy_notice

    @functools.wraps(handle)
    async def handle_message(self: Any, message: Any) -> Optional[List[Dict[str, Any]]]:
        if message.message_id and (message.metadata or {}).get(RESEND) is True:
            tracker = await self.tracker_store.retrieve(message.sender_id)
            replies = answered_before(tracker, message.message_id, message.text) if tracker is not None else None
            if replies is not None:
                for reply in replies:
                    await message.output_channel.send_response(message.sender_id, reply)
                channel = message.output_channel
                return channel.messages if isinstance(channel, CollectingOutputChannel) else None
        FIRST_REPLY.set(None)
        result = await handle(self, message)
        await send_privacy_notice(self, message)
        return result

    return handle_message


# --- logging -----------------------------------------------------------------------------------

def own_logging(configure: Callable[[], None]) -> None:
    """Rasa's command line sets up its own (coloured, structlog) logging: ``configure`` instead."""
    import rasa.__main__ as rasa_cli
    import rasa.utils.io

    rasa.utils.io.configure_colored_logging = lambda *args, **kwargs: None
    rasa_cli.configure_structlog = lambda log_level=None: configure()


# --- applying them -----------------------------------------------------------------------------

_APPLIED = "__patched_by_bot__"
_ORIGINALS: Dict[Any, Callable[..., Any]] = {}


def _replace(owner: Any, name: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    original = owner.__dict__[name]
    if getattr(original, _APPLIED, False):
        return
    patched = wrap(original)
    setattr(patched, _APPLIED, True)
    _ORIGINALS[(owner, name)] = original
    setattr(owner, name, patched)


def original(owner: Any, name: str) -> Callable[..., Any]:
    """Rasa's own ``owner.name``, patched or not (for the tests that compare with it)."""
    return _ORIGINALS.get((owner, name), owner.__dict__[name])


def apply() -> None:
    """Apply every patch (idempotent); UnsupportedRasa on another Rasa version."""
    check_rasa_version()
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.core.tracker_store import FailSafeTrackerStore

    _replace(RemoteAction, "_validate_action_result", lambda _original: validate_action_result)
    _replace(RemoteAction, "run", never_silent)
    for name in ("retrieve", "retrieve_full_tracker", "save"):
        _replace(FailSafeTrackerStore, name, loud)
    _replace(MessageProcessor, "handle_message", handled_once)


def patched() -> bool:
    """Whether ``apply`` has run in this process."""
    from rasa.core.processor import MessageProcessor

    return bool(getattr(MessageProcessor.handle_message, _APPLIED, False))
