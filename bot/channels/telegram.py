"""Telegram, safe to expose: ``bot.channels.telegram.TelegramInput`` in credentials.yml.

Unlike Rasa's stock connector it never calls Telegram at start-up (the webhook is
registered with ``python -m bot telegram-webhook``), checks the secret token Telegram
sends in X-Telegram-Bot-Api-Secret-Token, answers each update_id once, replies with
inline keyboards and answers their callback queries, and talks to a configurable Bot
API base URL (a self-hosted Bot API server, or a stand-in in the tests). aiogram does
the Bot API calls.
"""
from __future__ import annotations

import hmac
import logging
from typing import Any, Dict, List, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.guard import BUTTON, OnNewMessage
from bot.channels.messaging import HeldReplies, PhoneChannel, split_message, telegram_html
from bot.ops.settings import Settings

logger = logging.getLogger(__name__)

MAX_MESSAGE = 4096  # Telegram's limit for one message
CALLBACK_DATA_BYTES = 64  # Telegram's limit for inline-button data
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


def make_bot(settings: Settings) -> Any:
    from aiogram import Bot
    from aiogram.bot.api import TelegramAPIServer

    return Bot(
        token=settings.telegram_bot_token,
        server=TelegramAPIServer.from_base(settings.telegram_api_url),
        validate_token=False,
    )


class TelegramReplies(OutputChannel):
    """Sends one conversation's replies to its chat (the chat id is held only here)."""

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    def __init__(self, bot: Any, chat_id: int) -> None:
        self._bot = bot
        self._chat_id = chat_id

    async def _send(self, part: str, **options: Any) -> None:
        await self._bot.send_message(self._chat_id, telegram_html(part), parse_mode="HTML", **options)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        for part in split_message(text, limit=MAX_MESSAGE - 96):  # headroom for the HTML tags
            await self._send(part)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]],
                                     **kwargs: Any) -> None:
        from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

        keyboard = InlineKeyboardMarkup(row_width=1)
        for button in buttons:
            data = str(button.get("payload", ""))
            if len(data.encode()) > CALLBACK_DATA_BYTES:
                logger.warning("telegram: a button payload is too long for callback data; button left out")
                continue
            keyboard.add(InlineKeyboardButton(text=str(button["title"]), callback_data=data))
        parts = split_message(text, limit=MAX_MESSAGE - 96)
        for part in parts[:-1]:
            await self._send(part)
        await self._send(parts[-1], reply_markup=keyboard)


def _chat_id(message: Any) -> Optional[int]:
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    return chat_id if isinstance(chat_id, int) and not isinstance(chat_id, bool) else None


def read_update(update: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """(chat id, text for Rasa, callback query id) of an update, or None for updates we ignore
    (including malformed ones: any field of the wrong type)."""
    callback = update.get("callback_query")
    if isinstance(callback, dict):
        chat = _chat_id(callback.get("message"))
        data, callback_id = callback.get("data"), callback.get("id")
        if chat is None or not isinstance(callback_id, str):
            return None
        return {"chat_id": chat, "text": data if isinstance(data, str) else None, "callback_id": callback_id}
    for kind in ("message", "edited_message"):
        message = update.get(kind)
        if isinstance(message, dict):
            chat = _chat_id(message)
            if chat is None:
                return None
            text = message.get("text") if kind == "message" else None
            # Photos, stickers, voice notes, locations and edits carry no text: the screen answers them.
            return {"chat_id": chat, "text": text if isinstance(text, str) else None, "callback_id": None}
    return None


class TelegramInput(PhoneChannel):
    required = ("telegram_bot_token", "telegram_secret_token", "channel_id_key")

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._bot: Any = None

    def bot(self) -> Any:
        if self._bot is None:
            self._bot = make_bot(self.settings)
        return self._bot

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        async def receive(request: Request) -> HTTPResponse:
            given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
            if not hmac.compare_digest(given.encode(), self.settings.telegram_secret_token.encode()):
                logger.warning("telegram: rejected an update without the right secret token")
                return response.json({"error": "forbidden"}, status=403)
            try:
                update = request.json
            except Exception:  # noqa: BLE001 - malformed JSON from the network
                update = None
            incoming = read_update(update) if isinstance(update, dict) else None
            if incoming is None or not isinstance(update.get("update_id"), int):
                # Telegram resends anything but a 200: a malformed or unsupported update is
                # acknowledged and dropped, never retried for ever.
                logger.info("telegram: an update without a usable message was ignored")
                return response.json({"status": "ignored"})
            if self.handled(update["update_id"]):
                logger.info("telegram: duplicate update ignored")
                return response.json({"status": "duplicate"})
            await self._turn(update["update_id"], incoming, on_new_message, request.app.ctx.agent.lock_store)
            return response.json({"status": "ok"})

        return self.webhook_blueprint(receive)

    async def _turn(self, update_id: int, incoming: Dict[str, Any], on_new_message: OnNewMessage,
                    lock_store: Any) -> None:
        bot = self.bot()
        if incoming["callback_id"]:
            await bot.answer_callback_query(incoming["callback_id"])
        sender = self.conversation_id(str(incoming["chat_id"]))
        metadata = {BUTTON: True} if incoming["callback_id"] else None
        message = UserMessage(incoming["text"], HeldReplies(TelegramReplies(bot, incoming["chat_id"])), sender,
                              input_channel=self.name(), metadata=metadata)
        await self.answer_once(update_id, message, on_new_message, lock_store)


async def register_webhook(settings: Settings, url: str) -> Dict[str, Any]:
    """Tell Telegram where to deliver updates, with the secret token it must send back."""
    import json

    bot = make_bot(settings)
    try:
        return await bot.request("setWebhook", {
            "url": url,
            "secret_token": settings.telegram_secret_token,
            "allowed_updates": json.dumps(ALLOWED_UPDATES),
        })
    finally:
        await bot.session.close()
