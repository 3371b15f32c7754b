"""REST (``/webhooks/rest/webhook``): staff tools, tests and integrations. ``bot.channels.rest.RestChannel``.

Not a patients' door: nothing on the public side forwards to it (deploy/haproxy.cfg and the
README's proxy advice pass only web chat and the Telegram and Twilio webhooks), and it checks
who is asking before anything else:

* REST_TOKEN unset: only clients on this machine talking to it directly - the connection from a
  loopback address and every address a proxy header names (X-Forwarded-For, X-Real-IP,
  Forwarded) a loopback one too; anything else is a 403;
* REST_TOKEN set: every request must carry ``Authorization: Bearer <REST_TOKEN>`` (401 without).

Its conversations live in a namespace of their own: the conversation id is ``rest:`` + the
client's ``sender`` (``conversation_id``), so a REST client can never name a web chat session
(a bare hex id) or a phone conversation (``telegram-...``/``twilio-...``): it cannot write into,
read from, rate or delete another channel's conversation. Replies name the client's own sender.

Then Rasa's RestInput with the limits any endpoint needs, before any work is done:

* the body is a JSON object of at most REQUEST_MAX_BYTES (larger bodies get 413 from Sanic);
  ``sender`` is a short plain id (no shared "default" conversation), ``message`` is text,
  ``message_id`` (optional) a plain id of 8-64 characters, and ``metadata`` may only say
  ``{"button": true}`` and/or ``{"resend": true}``; anything else is a 400 with a short JSON
  error. A message with a ``message_id`` is answered once: the same id and text again (a resend
  after a lost connection, ``resend`` or not, or the cluster balancer's retry of a request
  whose instance died mid-turn) gets the reply it already had, not a second turn;
* rate limits per client address and per sender: 429 with a short JSON error;
* the message is screened like every channel's (bot/channels/guard.py);
* a client that leaves early or a failing turn is logged without the message text, and the
  ``input_channel`` a client names is ignored (it would pick another channel's wording);
* a turn that fails is a 503 with a short JSON error and the apology a patient would get
  (``messages``), so a client can show it or retry.

The REST channel is always on (credentials.yml), so its blueprint also starts the staff side's
upkeep once the server runs: the retention purge's schedule (bot/staff/server.py).
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
from typing import Any, Dict, Iterable, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.guard import (BUTTON, RESEND, OnNewMessage, apologise, client_message_id, screen_message,
                                valid_sender)
from bot.channels.limits import get_limits
from bot.ops.settings import get_settings
from bot.answers.wording import clinic_text

logger = logging.getLogger(__name__)

PREFIX = "rest:"  # the REST channel's namespace of conversation ids


def conversation_id(sender: str) -> str:
    """The id the tracker store (and the records' hash) knows a REST client's conversation by."""
    return PREFIX + sender


_FORWARDED_FOR = re.compile(r'for=("[^"]*"|[^;,\s]+)', re.IGNORECASE)


def _loopback(address: str) -> bool:
    address = address.strip().strip('"')
    if address.startswith("["):  # [IPv6] or [IPv6]:port
        address = address[1:].split("]", 1)[0]
    elif address.count(":") == 1:  # IPv4:port
        address = address.split(":", 1)[0]
    try:
        parsed = ipaddress.ip_address(address)
        return (getattr(parsed, "ipv4_mapped", None) or parsed).is_loopback  # ::ffff:127.0.0.1 too
    except ValueError:
        return False  # "unknown", an obfuscated name, a typo: not known to be this machine


def _named_addresses(headers: Any) -> Iterable[str]:
    """Every client address a proxy header names (X-Forwarded-For, X-Real-IP, Forwarded)."""
    for name in ("x-forwarded-for", "x-real-ip"):
        for value in headers.getall(name, []):
            yield from (part for part in value.split(",") if part.strip())
    for value in headers.getall("forwarded", []):
        yield from (match.group(1) for match in _FORWARDED_FOR.finditer(value))


def refusal(*, peer: str, headers: Any, authorization: Optional[str], token: str) -> Optional[HTTPResponse]:
    """None when this request may use the REST channel, else the response that refuses it."""
    if token:
        given = (authorization or "").strip()
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return None
        return bad_request("the REST channel needs the server's token (Authorization: Bearer ...)", 401)
    if _loopback(peer or "") and all(_loopback(a) for a in _named_addresses(headers)):
        return None
    return bad_request("the REST channel answers only clients on the assistant's own machine "
                       "(REST_TOKEN lets an integration elsewhere use it)", 403)


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


def own(messages: Iterable[Dict[str, Any]], sender: str) -> list:
    """Replies addressed to the client's own sender id (not the namespaced conversation id)."""
    return [{**message, "recipient_id": sender} if "recipient_id" in message else message for message in messages]


class RestChannel(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        from bot.staff.server import start_upkeep

        webhook = Blueprint("rest_webhook", __name__)
        webhook.listener("after_server_start")(start_upkeep)

        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def receive(request: Request) -> HTTPResponse:
            refused = refusal(peer=request.ip, headers=request.headers, token=get_settings().rest_token,
                              authorization=request.headers.get("authorization"))
            if refused is not None:
                logger.warning("rest: a request was refused (%s)", "token" if refused.status == 401 else "not local",
                               extra={"status": refused.status})
                return refused
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
            if message_id:
                # A message with an id is answered once: the same id again (the client's resend, or
                # the balancer's retry of a request whose instance died mid-turn, which carries no
                # mark of its own) gets the reply the conversation already holds.
                flags[RESEND] = True
            message = UserMessage(text, collector, conversation_id(sender), input_channel=self.name(),
                                  message_id=message_id, metadata=flags or None)
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
                                      "messages": own(apology.messages, sender)}, status=503)
            return response.json(own(collector.messages, sender))

        webhook.add_route(health, "/", methods=["GET"])
        webhook.add_route(receive, "/webhook", methods=["POST"])
        return webhook
