"""What the phone channels (Telegram, Twilio) share.

- Chat ids and phone numbers never reach the tracker store: the conversation id is a
  keyed hash (HMAC-SHA256 with CHANNEL_ID_KEY), and the real address lives only in the
  output channel object for the duration of one message.
- A delivery is answered once, whichever instance gets it and however often: the webhook
  answers when its turn is done (so a delivery whose instance dies mid-turn is sent again -
  by the cluster's balancer to the other instance at once, or by the platform later); the
  turn names its message by the delivery id (update_id, MessageSid), so a turn the dead
  instance had saved is not run twice (bot/rasa/main.py answers it from the conversation);
  its replies are held until the turn is saved, then sent inside the conversation's lock, each
  counted as sent in Redis (the seen-ids store) right after its API call: an instance that gets
  the delivery again sends only those not sent yet, and the delivery counts as handled once
  all are. The turn runs in a task of its own whose failures are logged without message text:
  a platform that gives up waiting does not cut it short.
- Replies are split under the platform's length limit, on line or word boundaries.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from functools import partial
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Set, Text, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.guard import RESEND, OnNewMessage, deliver
from bot.ops.settings import Settings, get_settings
from bot.channels.shared import seen_ids

logger = logging.getLogger(__name__)


def pseudonym(*, key: str, channel: str, address: str) -> str:
    """The conversation id for ``address`` (a chat id or phone number) on ``channel``."""
    digest = hmac.new(key.encode(), f"{channel}:{address}".encode(), hashlib.sha256).hexdigest()
    return f"{channel}-{digest[:40]}"


class BackgroundTurns:
    """Runs turns after the webhook has answered; keeps a reference so tasks are not lost."""

    def __init__(self, channel: str) -> None:
        self._channel = channel
        self._tasks: Set[asyncio.Task] = set()

    def start(self, turn: Awaitable[Any]) -> "asyncio.Future[None]":
        task = asyncio.ensure_future(self._guarded(turn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, turn: Awaitable[Any]) -> None:
        try:
            await turn
        except Exception as error:  # noqa: BLE001 - a turn must never take the server down
            logger.error("%s: a turn failed (%s)", self._channel, type(error).__name__)


class HeldReplies(CollectingOutputChannel):
    """A turn's replies, held while the turn runs and sent through the platform's output
    channel afterwards (``release``); it answers to the platform's name, so the domain's
    per-channel wording is the platform's."""

    def __init__(self, platform: OutputChannel) -> None:
        super().__init__()
        self._platform = platform

    def name(self) -> Text:  # the platform's, per instance
        return self._platform.name()

    async def release(self, recipient_id: Text, *, after: int = 0,
                      sent: Optional[Callable[[int], None]] = None) -> None:
        """Send the held replies from number ``after`` on; ``sent(n)`` after each (n sent in all)."""
        for number, message in enumerate(self.messages[after:], start=after + 1):
            await self._platform.send_response(recipient_id, {k: v for k, v in message.items() if k != "recipient_id"})
            if sent is not None:
                sent(number)


class PhoneChannel(InputChannel):
    """What the Telegram and Twilio input channels share: built from the settings (not
    credentials.yml), off until every setting in ``required`` is set, a health route, and
    de-duplication and background turns for the webhook."""

    required: Tuple[str, ...] = ()  # Settings fields; their environment variables are the upper-cased names

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "PhoneChannel":
        return cls(get_settings())

    def __init__(self, settings: Settings) -> None:
        known = set(Settings.__fields__)
        assert set(self.required) <= known, "required names must be Settings fields"
        missing = [name.upper() for name in self.required if not getattr(settings, name)]
        self.settings = settings
        self.enabled = not missing
        if missing:
            logger.info("%s: off (set %s to use it)", self.name(), ", ".join(missing))
        self._seen = seen_ids(settings, self.name())
        self._turns = BackgroundTurns(self.name())

    def conversation_id(self, address: str) -> str:
        return pseudonym(key=self.settings.channel_id_key, channel=self.name(), address=address)

    def handled(self, delivery: Any) -> bool:
        """Whether this delivery's replies have been sent (by any instance)."""
        return self._seen.seen(delivery)

    async def answer_once(self, delivery: Any, message: UserMessage, on_new_message: OnNewMessage, lock_store: Any, *,
                          before_release: Optional[Callable[[], None]] = None) -> None:
        """Run the turn of ``message`` (its output channel a ``HeldReplies``) as delivery
        ``delivery``, then send those of its replies no instance has sent yet; the caller (the
        webhook) waits for it, but a caller that gives up does not stop it. ``lock_store``: the
        agent's, whose conversation lock the sending holds."""
        message.message_id = f"{self.name()}-{delivery}"
        message.metadata = {**(message.metadata or {}), RESEND: True}  # answered before: the stored reply
        turn = self._answer(delivery, message, on_new_message, lock_store, before_release)
        await asyncio.shield(self._turns.start(turn))

    async def _answer(self, delivery: Any, message: UserMessage, on_new_message: OnNewMessage, lock_store: Any,
                      before_release: Optional[Callable[[], None]]) -> None:
        from rasa.core.lock_store import LockError

        held = message.output_channel
        ran = await deliver(message, on_new_message)
        done = False

        async def release() -> None:
            nonlocal done
            already = self._seen.sent_count(delivery)
            if already == 0 and before_release is not None:
                before_release()
            if already:
                logger.info("%s: a delivery partly or wholly answered by another instance", self.name())
            await held.release(message.sender_id, after=already, sent=partial(self._seen.count_sent, delivery))
            self._seen.first_time(delivery)  # handled: a later delivery of it is dropped at the webhook
            done = True

        try:
            async with lock_store.lock(message.sender_id):  # one sender at a time, and none during a turn
                await release()
        except LockError:  # the lock store is down: the turn got the apology, which must still go
            if not done:
                await release()
        if ran:
            logger.info("%s: answered a delivery", self.name())

    def webhook_blueprint(self, receive: Callable[[Request], Awaitable[HTTPResponse]]) -> Blueprint:
        """GET / (health) and POST /webhook, which answers 404 while the channel is off."""
        webhook = Blueprint(f"{self.name()}_webhook", __name__)

        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.enabled else "off"})

        async def webhook_post(request: Request) -> HTTPResponse:
            if not self.enabled:
                return response.json({"error": "not found"}, status=404)
            return await receive(request)

        webhook.add_route(health, "/", methods=["GET"])
        webhook.add_route(webhook_post, "/webhook", methods=["POST"])
        return webhook


def split_message(text: str, *, limit: int) -> List[str]:
    """Split ``text`` into parts of at most ``limit`` characters, preferring line and word breaks."""
    parts: List[str] = []
    current = ""
    for piece in _pieces(text, limit):
        candidate = f"{current}\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            if current:
                parts.append(current)
            current = piece
    if current:
        parts.append(current)
    return parts or [""]


def _pieces(text: str, limit: int) -> Iterable[str]:
    for line in text.split("\n"):
        if len(line) <= limit:
            yield line
            continue
        chunk = ""
        for word in line.split(" "):
            while len(word) > limit:  # a single overlong word: hard cut
                if chunk:
                    yield chunk
                    chunk = ""
                yield word[:limit]
                word = word[limit:]
            candidate = f"{chunk} {word}" if chunk else word
            if len(candidate) <= limit:
                chunk = candidate
            else:
                yield chunk
                chunk = word
        if chunk:
            yield chunk


_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")
_ITALIC = re.compile(r"(^|[\s(])_([^_\n]+)_(?=$|[\s.,;:!?)])")


def plain_text(text: str) -> str:
    """SMS: no formatting, just the words."""
    return _ITALIC.sub(r"\1\2", _BOLD.sub(r"\1", text))


def whatsapp_text(text: str) -> str:
    """WhatsApp: *bold* and _italic_."""
    return _BOLD.sub(r"*\1*", text)


def telegram_html(text: str) -> str:
    """Telegram's HTML parse mode: escape everything, then add <b> and <i>."""
    from aiogram.utils.text_decorations import html_decoration

    escaped = html_decoration.quote(text)
    return _ITALIC.sub(r"\1<i>\2</i>", _BOLD.sub(r"<b>\1</b>", escaped))


def numbered_options(titles: List[str]) -> str:
    return "\n".join(f"{number}. {title}" for number, title in enumerate(titles, start=1))
