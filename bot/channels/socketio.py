"""Web chat over socket.io (the channel the website widget uses): ``bot.channels.socketio.WebChatInput``.

The same events as Rasa's socket.io channel (``session_request`` / ``session_confirm``,
``user_uttered`` / ``bot_uttered``), with the conversation owned by the server:

* The server issues every session: a new id and a token (HMAC of the id with a server key).
  ``session_request`` resumes a session only with its token; a client that knows someone
  else's session id but not its token gets a new session of its own, never theirs.
* A message is always added to the session bound to the socket that sent it; a
  ``session_id`` in the message is ignored, so no client can write into another conversation.
* Only the configured origins (the demo page's, by default) may connect; a socket.io message
  is at most REQUEST_MAX_BYTES; rate limits per client address (on connect and per message)
  and per session; every message is screened like every channel's.
* ``enter_room`` is awaited when python-socketio makes it a coroutine (>= 5.10), so session
  persistence does not depend on the 5.9.0 pin.
* A message may carry the client's ``message_id`` (and ``resend`` when sent again after a lost
  connection); every reply names the message it answers (``reply_to``).
* Several instances (the cluster profile): rooms go through Redis (bot/channels/shared.py), so a reply
  reaches the session's sockets on any instance. What this instance sends to its own socket
  (the session confirmation, the apology when a turn fails - perhaps because Redis did) is
  emitted directly, not through Redis.
"""
from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
import uuid
from typing import Any, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot.channels.guard import BUTTON, RESEND, OnNewMessage, client_message_id, deliver
from bot.channels.limits import get_limits
from bot.ops.settings import Settings, get_settings

logger = logging.getLogger(__name__)


class SessionTokens:
    """Tokens that prove a client was given a session id by this server."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def issue(self, session_id: str) -> str:
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()

    def valid(self, session_id: Any, token: Any) -> bool:
        return (isinstance(session_id, str) and isinstance(token, str) and 0 < len(session_id) <= 64
                and hmac.compare_digest(self.issue(session_id), token))


def session_key(settings: Settings) -> str:
    from bot.ops import runtime

    return settings.webchat_session_key or runtime.secret(settings, "webchat-session")


def _address(environ: Dict[str, Any]) -> Optional[str]:
    request = environ.get("sanic.request")
    return (getattr(request, "remote_addr", None) or getattr(request, "ip", None)) if request is not None else None


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


class WebChatOutput(SocketIOOutput):
    """Rasa's socket.io output, each reply marked with the id of the message it answers;
    ``local``: emitted to this process's sockets only."""

    def __init__(self, sio: AsyncServer, bot_message_evt: Text, *, reply_to: Optional[str] = None,
                 local: bool = False) -> None:
        super().__init__(sio, bot_message_evt)
        self.reply_to = reply_to
        self.local = local

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        if self.reply_to:
            response = {**response, "reply_to": self.reply_to}
        await self.sio.emit(self.bot_message_evt, response, room=socket_id, ignore_queue=self.local)


class WebChatInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WebChatInput":
        credentials = credentials or {}
        return cls(credentials.get("user_message_evt", "user_uttered"),
                   credentials.get("bot_message_evt", "bot_uttered"),
                   credentials.get("socketio_path", "/socket.io"))

    def __init__(self, user_message_evt: Text = "user_uttered", bot_message_evt: Text = "bot_uttered",
                 socketio_path: Text = "/socket.io") -> None:
        self.user_message_evt = user_message_evt
        self.bot_message_evt = bot_message_evt
        self.socketio_path = socketio_path
        self.sio: Optional[AsyncServer] = None

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WebChatOutput(self.sio, self.bot_message_evt) if self.sio is not None else None

    def server(self, settings: Settings) -> AsyncServer:
        from bot.channels.shared import socketio_manager

        # Loggers of our own (python-socketio would otherwise add a plain-text stderr handler), at
        # WARNING: at INFO they log every packet, message text included.
        for name in ("bot.socketio", "bot.engineio"):
            logging.getLogger(name).setLevel(logging.WARNING)
        return AsyncServer(async_mode="sanic", cors_allowed_origins=settings.allowed_origins,
                           max_http_buffer_size=settings.request_max_bytes,
                           client_manager=socketio_manager(settings),
                           logger=logging.getLogger("bot.socketio"), engineio_logger=logging.getLogger("bot.engineio"))

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        settings = get_settings()
        sio = self.server(settings)
        tokens = SessionTokens(session_key(settings))
        webhook = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect")
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            address = _address(environ)
            if not get_limits().for_address(address).allowed:
                logger.warning("rate limit: a web chat connection was refused")
                return False
            await sio.save_session(sid, {"address": address})
            return True

        @sio.on("session_request")
        async def session_request(sid: Text, data: Any) -> None:
            data = data if isinstance(data, dict) else {}
            session_id, token = data.get("session_id"), data.get("token")
            if not tokens.valid(session_id, token):
                session_id = uuid.uuid4().hex  # a new conversation, issued by the server
                token = tokens.issue(session_id)
            state = await sio.get_session(sid)
            previous = state.get("session_id")
            if previous and previous != session_id:
                await _maybe_await(sio.leave_room(sid, previous))
            await _maybe_await(sio.enter_room(sid, session_id))
            await sio.save_session(sid, {**state, "session_id": session_id})
            await sio.emit("session_confirm", {"session_id": session_id, "token": token}, room=sid, ignore_queue=True)

        @sio.on(self.user_message_evt)
        async def handle_message(sid: Text, data: Any) -> None:
            state = await sio.get_session(sid)
            session_id = state.get("session_id")
            if not session_id:
                await sio.emit("session_required", {}, room=sid, ignore_queue=True)
                return
            data = data if isinstance(data, dict) else {}
            metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
            flags = {key: True for key in (BUTTON, RESEND) if metadata.get(key) is True}
            message_id = client_message_id(data.get("message_id"))
            text = data.get("message")
            output = WebChatOutput(sio, self.bot_message_evt, reply_to=message_id)
            message = UserMessage(text if isinstance(text, str) else None, output, session_id,
                                  input_channel=self.name(), message_id=message_id, metadata=flags or None)
            await deliver(message, on_new_message, address=state.get("address"),
                          apology_output=WebChatOutput(sio, self.bot_message_evt, reply_to=message_id, local=True))

        return webhook
