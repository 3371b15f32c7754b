"""The project's web server: the chat widget's files, a demo clinic page that embeds it, the
staff dashboard (``/staff/``, bot/staff/dashboard.py), and the health of the whole assistant
(``python -m bot.ops.web``; supervised by ``python -m bot serve``).

The widget's files come from this project (``web/widget``) and socket.io-client from
``web/node_modules`` (installed by the set-up with ``npm ci``), so no page needs a
third-party CDN. ``widget-config.json`` carries the server-side settings the widget must agree
with: the message length limit, how long it may keep a transcript, and the short disclaimer
from domain.yml. ``/health`` asks every service of the assistant and answers 200 only when all
of them answer.
"""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple
from urllib.parse import urlsplit

from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.ops.settings import PROJECT_ROOT, Settings, get_settings
from bot.answers.wording import response_text

WEB_ROOT = PROJECT_ROOT / "web"
SOCKET_IO_CLIENT = WEB_ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
MAX_REQUEST_BYTES = 16 * 1024  # nothing here takes a body larger than a login form

STATIC: Dict[str, Tuple[Path, str]] = {
    "/widget/clinic-chat.js": (WEB_ROOT / "widget" / "clinic-chat.js", "text/javascript; charset=utf-8"),
    "/widget/clinic-chat.css": (WEB_ROOT / "widget" / "clinic-chat.css", "text/css; charset=utf-8"),
    "/widget/vendor/socket.io.min.js": (SOCKET_IO_CLIENT, "text/javascript; charset=utf-8"),
    "/demo/demo.css": (WEB_ROOT / "demo" / "demo.css", "text/css; charset=utf-8"),
}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


@dataclass(frozen=True)
class WebOptions:
    server_url: str  # where the widget finds Rasa's socket.io channel
    clinic_name: str
    max_chars: int
    transcript_hours: float = 24.0
    primary_color: str = "#0b5d7a"
    services: Dict[str, str] = field(default_factory=dict)  # name -> health URL, for /health


def widget_config(options: WebOptions) -> dict:
    return {"maxLength": options.max_chars, "transcriptHours": options.transcript_hours,
            "text": {"disclaimer": response_text("utter_disclaimer_short")}}


def _origins(server_url: str) -> str:
    parts = urlsplit(server_url)
    secure = parts.scheme == "https"
    return f"{parts.scheme}://{parts.netloc} {'wss' if secure else 'ws'}://{parts.netloc}"


def demo_page(options: WebOptions, nonce: str) -> str:
    from bot.ops.templates import render, script_json  # the pages' one templating (the dashboard's too)

    widget_options = {"server": options.server_url, "clinic": options.clinic_name,
                      "colors": {"primary": options.primary_color}}
    return render(WEB_ROOT / "demo", "index.html", clinic_name=options.clinic_name, nonce=nonce,
                  widget_options=script_json(widget_options))


async def _answers(url: str) -> bool:
    """Whether a service answers: an HTTP URL with 200, a PostgreSQL URL to ``SELECT 1``, a
    Redis URL to PING, haproxy's stats socket (``haproxy:///path``) with every instance up - within
    3 seconds."""
    if url.startswith("haproxy://"):
        from bot.ops.cluster import balancer_sees_all

        return await asyncio.get_running_loop().run_in_executor(None, balancer_sees_all, Path(url[len("haproxy://"):]))
    if url.startswith(("postgresql://", "postgresql+psycopg2://")):
        return await asyncio.get_running_loop().run_in_executor(None, _sql_answers, url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return await _redis_answers(url)
    import aiohttp

    try:
        timeout = aiohttp.ClientTimeout(total=3)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as reply:
            return reply.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False


def _sql_answers(url: str) -> bool:
    import psycopg2

    try:
        connection = psycopg2.connect("postgresql://" + url.split("://", 1)[1], connect_timeout=3)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone() == (1,)
        finally:
            connection.close()
    except psycopg2.Error:
        return False


async def _redis_answers(url: str) -> bool:
    from redis import asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        return bool(await client.ping())
    except (RedisError, OSError, asyncio.TimeoutError):
        return False
    finally:
        await client.close()


def create_app(options: WebOptions, name: str = "clinic_web") -> Sanic:
    app = Sanic(name, configure_logging=False)
    app.config.REQUEST_MAX_SIZE = MAX_REQUEST_BYTES
    app.config.KEEP_ALIVE_TIMEOUT = 5

    @app.get("/")
    async def demo(_: Request) -> HTTPResponse:
        nonce = secrets.token_urlsafe(16)
        csp = (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {_origins(options.server_url)}; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        return response.html(demo_page(options, nonce), headers={"Content-Security-Policy": csp})

    @app.get("/widget/widget-config.json")
    async def config(_: Request) -> HTTPResponse:
        return response.json(widget_config(options), headers={"Access-Control-Allow-Origin": "*"})

    async def static(request: Request) -> HTTPResponse:
        file, content_type = STATIC[request.path]
        try:
            body = file.read_bytes()
        except FileNotFoundError:
            return response.text("Not Found", status=404)
        return response.raw(body, content_type=content_type)

    for path in STATIC:
        app.add_route(static, path, methods=["GET"], name=f"static_{path.strip('/').replace('/', '_').replace('.', '_')}")

    from bot.clinic.store import get_clinic_store
    from bot.knowledge import get_knowledge_base
    from bot.staff.accounts import get_accounts
    from bot.staff.dashboard import create_blueprint
    from bot.staff.records import get_record_store

    def article_facts() -> list:
        """The articles' facts: a clinic answer's figures are compared with theirs."""
        return list(get_knowledge_base().facts())

    # The staff dashboard, on its own route (bot/staff/dashboard.py).
    app.blueprint(create_blueprint(settings=get_settings(), records=get_record_store, accounts=get_accounts,
                                   clinic=get_clinic_store, article_facts=article_facts))

    @app.get("/health")
    async def health(_: Request) -> HTTPResponse:
        names = list(options.services)
        results = await asyncio.gather(*(_answers(options.services[n]) for n in names))
        status = {name: ("ok" if ok else "down") for name, ok in zip(names, results)}
        healthy = all(results)
        return response.json({"status": "ok" if healthy else "degraded", "services": status},
                             status=200 if healthy else 503)

    @app.on_response
    async def headers(_: Request, reply: HTTPResponse) -> None:
        for key, value in SECURITY_HEADERS.items():
            reply.headers.setdefault(key, value)

    @app.exception(SanicException)
    async def plain_error(_: Request, error: SanicException) -> HTTPResponse:
        status = getattr(error, "status_code", 500) or 500
        return response.text({404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large"}.get(status, "Error"),
                             status=status)

    return app


def service_health_urls(settings: Settings) -> Dict[str, str]:
    """What /health asks: the Rasa server and the action server (in the cluster profile: the
    balancer, every instance and action server, PostgreSQL and Redis). Only the names are shown."""
    if settings.profile == "cluster":
        from bot.ops.cluster import health_targets

        return health_targets(settings)
    return {
        "rasa": f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/",
        "actions": f"http://127.0.0.1:{settings.action_server_port}/health",
    }


def default_options(settings: Optional[Settings] = None) -> WebOptions:
    settings = settings or get_settings()
    return WebOptions(server_url=settings.widget_server_url, clinic_name=settings.clinic_name,
                      max_chars=settings.message_max_chars, transcript_hours=settings.widget_transcript_hours,
                      services=service_health_urls(settings))


def main() -> None:
    from bot.ops.logs import configure_logging

    configure_logging("web")
    settings = get_settings()
    app = create_app(default_options(settings))
    configure_logging("web")  # again: Sanic adds handlers of its own when the app is made
    app.run(host=settings.web_interface, port=settings.web_port, workers=1, access_log=False, motd=False)


if __name__ == "__main__":
    main()
