"""What the phone channels (Telegram, Twilio) share.

- Chat ids and phone numbers never reach the tracker store: the conversation id is a
  keyed hash (HMAC-SHA256 with CHANNEL_ID_KEY), and the real address lives only in the
  output channel object for the duration of one message.
- Webhooks answer at once; the turn runs in a background task whose failures are
  logged without message text.
- Platforms retry deliveries: each delivery id is handled once.
- Replies are split under the platform's length limit, on line or word boundaries.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Set, Text, Tuple

from rasa.core.channels.channel import InputChannel
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.settings import Settings, get_settings
from bot.shared import seen_ids

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

    def start(self, turn: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(self._guarded(turn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, turn: Awaitable[Any]) -> None:
        try:
            await turn
        except Exception as error:  # noqa: BLE001 - a turn must never take the server down
            logger.error("%s: a turn failed (%s)", self._channel, type(error).__name__)


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
