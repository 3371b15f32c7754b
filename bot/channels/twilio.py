"""SMS and WhatsApp through Twilio, safe to expose: ``bot.channels.twilio.TwilioInput``.

Unlike Rasa's stock connector it checks X-Twilio-Signature with twilio's
RequestValidator (403 otherwise), sends with twilio's async HTTP client (the event loop
never blocks), answers media-only and location messages politely, handles each
MessageSid once, splits replies under 1,600 characters, and turns buttons into
numbered options that a reply of "1", "2", ... selects. The API base URL is
configurable (a stand-in in the tests).
"""
from __future__ import annotations

import logging
from functools import partial
from typing import Any, Dict, List, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.guard import BUTTON, OnNewMessage, deliver
from bot.channels.messaging import HeldReplies, PhoneChannel, numbered_options, plain_text, split_message, whatsapp_text
from bot.ops.settings import Settings
from bot.channels.shared import offered_options

logger = logging.getLogger(__name__)

MAX_MESSAGE = 1600  # Twilio's limit for one message body
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def make_client(settings: Settings) -> Any:
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=AsyncTwilioHttpClient())
    client.api.base_url = settings.twilio_api_url.rstrip("/")
    return client


def choose(options, conversation: str, text: str) -> Optional[str]:
    """The payload a reply like "2" selects, if options were offered and it is in range."""
    payloads = options.offered(conversation)
    choice = text.strip().rstrip(".)")
    if not payloads or not choice.isdigit():
        return None
    number = int(choice)
    return payloads[number - 1] if 1 <= number <= len(payloads) else None


class TwilioReplies(OutputChannel):
    """Sends one conversation's replies (the phone number is held only here)."""

    @classmethod
    def name(cls) -> Text:
        return "twilio"

    def __init__(self, client: Any, *, to: str, from_: str, conversation: str, options: Any) -> None:
        self._client = client
        self._to = to
        self._from = from_
        self._conversation = conversation
        self._options = options
        self._whatsapp = to.startswith("whatsapp:")

    def _format(self, text: str) -> str:
        return whatsapp_text(text) if self._whatsapp else plain_text(text)

    async def _send(self, body: str) -> None:
        for part in split_message(body, limit=MAX_MESSAGE):
            await self._client.messages.create_async(to=self._to, from_=self._from, body=part)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._send(self._format(text))

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]],
                                     **kwargs: Any) -> None:
        self._options.offer(self._conversation, [str(b.get("payload", "")) for b in buttons])
        options = numbered_options([str(b["title"]) for b in buttons])
        await self._send(f"{self._format(text)}\n{options}")


def plausible_signature(signature: str) -> bool:
    """Twilio signs with HMAC-SHA1: 28 characters of base64."""
    import binascii
    from base64 import b64decode

    if len(signature) != 28:
        return False
    try:
        return len(b64decode(signature, validate=True)) == 20
    except (binascii.Error, ValueError):
        return False


def read_post(body: bytes) -> Dict[str, str]:
    """Twilio's form post, blank values kept: the signature covers them (e.g. an empty Body)."""
    from urllib.parse import parse_qs

    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items() if values}


def read_form(form: Dict[str, str]) -> Optional[str]:
    """The text of an incoming message, or None for media-only, location and empty ones."""
    body = form.get("Body", "")
    return body if body.strip() else None


class TwilioInput(PhoneChannel):
    required = ("twilio_account_sid", "twilio_auth_token", "channel_id_key")

    @classmethod
    def name(cls) -> Text:
        return "twilio"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._options = offered_options(settings)
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    def _signed(self, request: Request, form: Dict[str, str]) -> bool:
        from twilio.request_validator import RequestValidator

        signature = request.headers.get("X-Twilio-Signature", "")
        url = self.settings.twilio_webhook_url or request.url
        return bool(signature) and RequestValidator(self.settings.twilio_auth_token).validate(url, form, signature)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        async def receive(request: Request) -> HTTPResponse:
            if not plausible_signature(request.headers.get("X-Twilio-Signature", "")):
                # Unsigned requests are refused before their body is read (and Sanic has already
                # refused any body over REQUEST_MAX_BYTES).
                logger.warning("twilio: rejected a request without a signature")
                return response.json({"error": "forbidden"}, status=403)
            form = read_post(request.body)
            if not self._signed(request, form):
                logger.warning("twilio: rejected a request without a valid signature")
                return response.json({"error": "forbidden"}, status=403)
            sender, to = form.get("From", ""), form.get("To", "")
            if not sender or not to:
                return response.json({"error": "bad request"}, status=400)
            delivery = form.get("MessageSid") or form.get("SmsMessageSid")
            if delivery and self.handled(delivery):
                logger.info("twilio: duplicate message ignored")
            else:
                await self._turn(delivery, sender, to, read_form(form), on_new_message, request.app.ctx.agent.lock_store)
            return response.text(EMPTY_TWIML, content_type="text/xml")

        return self.webhook_blueprint(receive)

    async def _turn(self, delivery: Optional[str], sender: str, to: str, text: Optional[str],
                    on_new_message: OnNewMessage, lock_store: Any) -> None:
        conversation = self.conversation_id(sender)
        chosen = choose(self._options, conversation, text) if text else None
        replies = TwilioReplies(self.client(), to=sender, from_=to, conversation=conversation, options=self._options)
        message = UserMessage(chosen or text, HeldReplies(replies), conversation, input_channel=self.name(),
                              metadata={BUTTON: True} if chosen else None)
        # the options offered are cleared when the replies go (which may offer new ones), so that a
        # delivery sent again to another instance still reads "2" as the option it chose
        clear = partial(self._options.clear, conversation)
        if delivery:
            await self.answer_once(delivery, message, on_new_message, lock_store, before_release=clear)
        else:  # no delivery id (never from Twilio itself): nothing to answer once by
            await deliver(message, on_new_message)
            clear()
            await message.output_channel.release(conversation)
