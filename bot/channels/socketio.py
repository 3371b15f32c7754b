"""Web chat over socket.io (the channel the website widget uses).

Rasa's own socket.io channel, with every message screened (length, kind, crisis
first) before Rasa sees it. Session persistence relies on python-socketio 5.9.0
(pinned): from 5.10 ``enter_room`` is a coroutine that Rasa 3.6.21 never awaits,
and every reply to a persisted session would be silently lost. The browser tests
reload the page and expect answers in the same session, so they catch that.
"""
from __future__ import annotations

from rasa.core.channels.socketio import SocketIOInput

from bot.channels.guard import Screened


class WebChatInput(Screened, SocketIOInput):
    """``bot.channels.socketio.WebChatInput`` in credentials.yml."""
