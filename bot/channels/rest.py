"""REST (``/webhooks/rest/webhook``): staff tools, tests and integrations. ``bot.channels.rest.RestChannel``.

Rasa's RestInput with the limits a public endpoint needs, before any work is done:

* the body is a JSON object of at most REQUEST_MAX_BYTES (larger bodies get 413 from Sanic);
  ``sender`` is a short plain id (no shared "default" conversation), ``message`` is text,
  ``message_id`` (optional) a plain id of 8-64 characters, and ``metadata`` may only say
  ``{"button": true}`` and/or ``{"resend": true}`` (the same ``message_id`` sent again after a
  lost connection: answered with the reply it already had, not a second turn); anything else
  is a 400 with a short JSON error;
* rate limits per client address and per sender: 429 with a short JSON error;
* the message is screened like every channel's (bot/channels/guard.py);
* a client that leaves early or a failing turn is logged without the message text, and the
  ``input_channel`` a client names is ignored (it would pick another channel's wording);
* a turn that fails is a 503 with a short JSON error and the apology a patient would get
  (``messages``), so a client can show it or retry.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.guard import (BUTTON, RESEND, OnNewMessage, apologise, client_message_id, screen_message,
                                valid_sender)
from bot.channels.limits import get_limits
from bot.wording import clinic_text

logger = logging.getLogger(__name__)


def bad_request(error: str, status: int = 400) -> HTTPResponse:
    return response.json({"error": error}, status=status)


def client_address(request: Request) -> Optional[str]:
    """The client's address (behind a proxy, Sanic's PROXIES_COUNT / REAL_IP_HEADER decide)."""
    return request.remote_addr or request.ip or None


def read_json_object(request: Request) -> Optional[Dict[str, Any]]:
    try:
        body = request.json
    except Exception:  # noqa: BLE001 - malformed JSON from the network
        return None
    return body if isinstance(body, dict) else None


class RestChannel(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        webhook = Blueprint("rest_webhook", __name__)

        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def receive(request: Request) -> HTTPResponse:
            body = read_json_object(request)
            if body is None:
                return bad_request("the body must be a JSON object")
            sender, text, metadata = body.get("sender"), body.get("message"), body.get("metadata")
            if not valid_sender(sender):
                return bad_request("'sender' must be 1-128 characters of A-Z a-z 0-9 . _ : @ -")
            if text is not None and not isinstance(text, str):
                return bad_request("'message' must be text")
            if metadata is not None and not isinstance(metadata, dict):
                return bad_request("'metadata' must be an object")
            message_id = body.get("message_id")
            if message_id is not None and client_message_id(message_id) is None:
                return bad_request("'message_id' must be 8-64 characters of A-Z a-z 0-9 _ -")
            limits = get_limits()
            if not (limits.for_address(client_address(request)).allowed and limits.for_sender(self.name(), sender).allowed):
                logger.warning("rate limit: a REST message was refused")
                # The message is not read: the reply still names the emergency numbers
                return response.json({"error": "too many messages; please slow down",
                                      "messages": [{"recipient_id": sender,
                                                    "text": clinic_text("utter_slow_down", self.name())}]},
                                     status=429)
            collector = CollectingOutputChannel()
            flags = {key: True for key in (BUTTON, RESEND) if metadata and metadata.get(key) is True}
            message = UserMessage(text, collector, sender, input_channel=self.name(), message_id=message_id,
                                  metadata=flags or None)
            try:
                await on_new_message(screen_message(message))
            except asyncio.CancelledError:
                logger.warning("rest: the client left before its reply was ready")
                raise
            except Exception as error:  # noqa: BLE001 - never a stack trace or the text in the reply
                logger.error("rest: a turn failed (%s)", type(error).__name__)
                apology = CollectingOutputChannel()
                await apologise(message, apology)
                return response.json({"error": "the assistant could not answer; please try again",
                                      "messages": apology.messages}, status=503)
            return response.json(collector.messages)

        webhook.add_route(health, "/", methods=["GET"])
        webhook.add_route(receive, "/webhook", methods=["POST"])
        return webhook
