"""The staff side inside the Rasa server.

* "Forget me" deletes only when confirmed right after its own question: a confirmation button
  pressed at any other time (an old button, or a forged press) is read as "forget me", so the
  question is asked again and nothing is deleted (``confirmation_in_context``, applied inside
  the NLU graph by ``bot.rasa.components.ConfirmationInContext``).
* At each save of a conversation (the tracker store, bot/staff/tracker_store.py: so inside the
  conversation's lock): a confirmed "forget me" deletes the conversation, its records and the
  NLU candidates made from it instead of saving it; a crisis turn is counted (never its text);
  and the first reply of a conversation is noted, so that the privacy notice follows it
  (bot/rasa/patches.py sends it after the turn).
* The retention purge runs every PURGE_INTERVAL_MINUTES inside the server, with the server's
  own lock store (bot/staff/conversations.py), started by the REST channel's blueprint once
  the server runs. In the embedded profile the server holds an
  exclusive file lock, DATA_DIR/run/conversations.lock, for as long as it runs: the in-memory
  lock store lives in this process, so `bot purge` from the command line may only run while
  no server does.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any, Awaitable, Callable, Dict, Optional

from bot.ops.settings import Settings, get_settings

logger = logging.getLogger(__name__)

PRIVACY_NOTICE = "utter_privacy_notice"
FORGET_ME = "forget_me"
FORGET_CONFIRM = "forget_confirm"  # intent of the "Yes, delete it" button
FORGET_ASK = "utter_forget_ask"  # the question it confirms
FORGOTTEN = "utter_forgotten"

# The tracker of a turn that was the first of its conversation (set by the save hook, read after
# the turn by the message handler: both run in the same task).
FIRST_REPLY: contextvars.ContextVar[Optional[Any]] = contextvars.ContextVar("first_reply", default=None)


def _turn_events(tracker: Any) -> tuple:
    """(events before the latest user message, the latest user message, events after it)."""
    from rasa.shared.core.events import UserUttered

    events = list(tracker.events)
    for position in range(len(events) - 1, -1, -1):
        if isinstance(events[position], UserUttered):
            return events[:position], events[position], events[position + 1:]
    return events, None, []


def _uttered(events: list, response: str) -> bool:
    from rasa.shared.core.events import BotUttered

    return any(isinstance(e, BotUttered) and (e.metadata or {}).get("utter_action") == response for e in events)


def forget_asked(events: Any) -> bool:
    """Whether the conversation's latest reply (everything since its latest user message) asked
    "Do you want me to delete this conversation?"."""
    from rasa.shared.core.events import BotUttered, UserUttered

    for event in reversed(list(events or [])):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, BotUttered) and (event.metadata or {}).get("utter_action") == FORGET_ASK:
            return True
    return False


def confirmation_in_context(parse_data: Dict[str, Any], tracker: Any) -> Dict[str, Any]:
    """The parse result of a message, with a "forget me" confirmation that does not answer its
    question read as "forget me" (the question is asked again; nothing is deleted)."""
    intent = (parse_data.get("intent") or {}).get("name")
    if intent != FORGET_CONFIRM or forget_asked(getattr(tracker, "events", None)):
        return parse_data
    logger.info("forget me: a confirmation without its question; asking again")
    asked = {"name": FORGET_ME, "confidence": 1.0}
    return {**parse_data, "intent": asked, "intent_ranking": [asked]}


async def save_or_forget(store: Any, tracker: Any, save: Callable[[Any], Awaitable[None]]) -> None:
    """A tracker store's save with the staff side's work (see the module's docstring). ``store``
    is the SQL tracker store that can delete; ``save`` its own save. A deletion that fails is
    ``StoreUnavailable``: the turn fails loudly (the patient gets the apology), never silently."""
    from rasa.shared.core.events import BotUttered

    from bot.crisis.detector import CRISIS_INTENTS
    from bot.rasa.stores import StoreUnavailable

    before, user, after = _turn_events(tracker)
    intent = (user.intent or {}).get("name") if user is not None else None
    if intent == FORGET_CONFIRM and _uttered(after, FORGOTTEN) and forget_asked(before):
        from bot.staff.conversations import delete_locked
        from bot.staff.records import get_record_store

        try:
            await delete_locked(tracker.sender_id, tracker_store=store, records=get_record_store(), why="forget me")
        except StoreUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - said by type; the turn fails loudly
            logger.error("forget me: the conversation could not be deleted (%s)", type(error).__name__)
            raise StoreUnavailable("the conversation could not be deleted") from None
        return
    await save(tracker)
    if intent in CRISIS_INTENTS:
        from bot.staff.turns import off_the_loop, record_crisis

        await off_the_loop(record_crisis, sender_id=tracker.sender_id, channel=user.input_channel or "", intent=intent)
    if user is not None and not any(isinstance(e, BotUttered) for e in before) and any(
            isinstance(e, BotUttered) for e in after):
        FIRST_REPLY.set(tracker)


async def send_privacy_notice(processor: Any, message: Any) -> None:
    """After the first reply of a conversation: one line on what is kept and for how long."""
    tracker = FIRST_REPLY.get()
    FIRST_REPLY.set(None)
    if tracker is None or message.output_channel is None:
        return
    try:
        draft = await processor.nlg.generate(PRIVACY_NOTICE, tracker, message.output_channel.name())
        if draft:
            await message.output_channel.send_response(message.sender_id, draft)
    except Exception as error:  # noqa: BLE001 - the turn is done; its replies must not become an error
        logger.error("the privacy notice could not be sent (%s)", type(error).__name__)


# --- the purge schedule -----------------------------------------------------------------------

async def purge_now(agent: Any, settings: Settings) -> None:
    from bot.staff.conversations import cutoff_for, purge
    from bot.staff.records import get_record_store

    await purge(tracker_store=agent.tracker_store, lock_store=agent.lock_store, records=get_record_store(),
                cutoff=cutoff_for(settings.retention_days))


async def _purge_forever(app: Any, settings: Settings) -> None:
    interval = settings.purge_interval_minutes * 60
    while True:
        agent = getattr(app.ctx, "agent", None)
        if agent is not None and agent.tracker_store is not None:
            try:
                await purge_now(agent, settings)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the next run tries again
                logger.error("purge failed (%s); trying again in %.0f minutes", type(error).__name__,
                             settings.purge_interval_minutes)
        await asyncio.sleep(interval)


async def start_upkeep(app: Any, _loop: Any = None) -> None:
    """Sanic listener (after the server started): the file lock (embedded) and the purge task."""
    from bot.staff.conversations import ServerRunning, conversations_lock_path, hold_conversations_lock

    settings = get_settings()
    if settings.profile == "embedded":
        try:
            app.ctx.conversations_lock = hold_conversations_lock(settings)
        except ServerRunning:
            logger.error("another process holds %s (a purge from the command line, or a second embedded "
                         "server): this server does not purge", conversations_lock_path(settings))
            return
    app.ctx.purge_task = asyncio.ensure_future(_purge_forever(app, settings))
