"""Local stand-ins for the Telegram Bot API and Twilio's Messages API on 127.0.0.1.

They speak the same protocol as the real services (paths, form or JSON bodies,
authentication, response shapes) and record every call, so tests can assert what the
assistant sent without the internet.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
import time
from typing import Any, Dict, List, Optional

from aiohttp import web


class StandIn:
    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: Optional[web.AppRunner] = None
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    def record(self, call: Dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(call)

    def recorded(self, **match: Any) -> List[Dict[str, Any]]:
        with self._lock:
            return [c for c in self.calls if all(str(c.get(k)) == str(v) for k, v in match.items())]

    TEXT_FIELD = "text"

    def wait_for(self, count: int, timeout: float = 30, **match: Any) -> List[Dict[str, Any]]:
        """The matching calls once there are at least ``count`` and the last one ends a reply
        (the disclaimer or a channel notice is always the last message of a turn)."""
        from tests.clients import ends_reply

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.recorded(**match)
            last = calls[-1] if calls else {}
            if len(calls) >= count and (self.TEXT_FIELD not in last or ends_reply(str(last[self.TEXT_FIELD]))):
                return calls
            time.sleep(0.05)
        raise AssertionError(f"expected {count} calls matching {match}, got {self.recorded(**match)}")

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


class TelegramBotApi(StandIn):
    """POST /bot<token>/<method>, form or JSON parameters, {"ok": ..., "result": ...} answers."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._ids = itertools.count(1)
        super().__init__()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self._method)

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        method = request.match_info["method"]
        if isinstance(params.get("reply_markup"), str):
            params["reply_markup"] = json.loads(params["reply_markup"])
        self.record({"method": method, **params})
        if method == "sendMessage":
            result: Any = {"message_id": next(self._ids), "date": int(time.time()),
                           "chat": {"id": int(params["chat_id"]), "type": "private"}, "text": params.get("text", "")}
        else:
            result = True
        return web.json_response({"ok": True, "result": result})


class TwilioApi(StandIn):
    TEXT_FIELD = "Body"

    """POST /2010-04-01/Accounts/<sid>/Messages.json with HTTP basic auth, form parameters."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._ids = itertools.count(1)
        super().__init__()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)

    async def _create(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != expected or request.match_info["sid"] != self.account_sid:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        params = dict(await request.post())
        if len(params.get("Body", "")) > 1600:
            return web.json_response({"code": 21617, "message": "The concatenated message body exceeds the 1600 character limit", "status": 400}, status=400)
        self.record({"method": "Messages", **params})
        sid = f"SM{next(self._ids):032x}"
        return web.json_response({
            "sid": sid, "account_sid": self.account_sid, "to": params.get("To"), "from": params.get("From"),
            "body": params.get("Body"), "status": "queued", "num_segments": "1", "direction": "outbound-api",
            "api_version": "2010-04-01", "date_created": "Sun, 22 Nov 2026 10:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }, status=201)
