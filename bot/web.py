"""Serves the chat widget's assets and a demo clinic page that embeds it.

The widget's files come from this project (``web/widget``) and socket.io-client from
``web/node_modules`` (installed by the set-up with ``npm ci``), so no page needs a
third-party CDN. ``widget-config.json`` carries the server-side settings the widget
must agree with: the message length limit and the short disclaimer from domain.yml.
"""
from __future__ import annotations

import argparse
import html
import json
import secrets
import threading
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Optional, Tuple
from urllib.parse import urlsplit

import yaml

from bot.settings import PROJECT_ROOT, get_settings

WEB_ROOT = PROJECT_ROOT / "web"
SOCKET_IO_CLIENT = WEB_ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

STATIC: Dict[str, Tuple[Path, str]] = {
    "/widget/clinic-chat.js": (WEB_ROOT / "widget" / "clinic-chat.js", "text/javascript; charset=utf-8"),
    "/widget/clinic-chat.css": (WEB_ROOT / "widget" / "clinic-chat.css", "text/css; charset=utf-8"),
    "/widget/vendor/socket.io.min.js": (SOCKET_IO_CLIENT, "text/javascript; charset=utf-8"),
    "/demo/demo.css": (WEB_ROOT / "demo" / "demo.css", "text/css; charset=utf-8"),
}


@dataclass(frozen=True)
class WebOptions:
    server_url: str  # where the widget finds Rasa's socket.io channel
    clinic_name: str
    max_chars: int
    primary_color: str = "#0b5d7a"


@lru_cache(maxsize=1)
def short_disclaimer() -> str:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return domain["responses"]["utter_disclaimer_short"][0]["text"]


def widget_config(options: WebOptions) -> dict:
    return {"maxLength": options.max_chars, "text": {"disclaimer": short_disclaimer()}}


def _script_json(value: object) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _origins(server_url: str) -> str:
    parts = urlsplit(server_url)
    secure = parts.scheme == "https"
    return f"{parts.scheme}://{parts.netloc} {'wss' if secure else 'ws'}://{parts.netloc}"


def demo_page(options: WebOptions, nonce: str) -> str:
    template = (WEB_ROOT / "demo" / "index.html").read_text(encoding="utf-8")
    widget_options = {"server": options.server_url, "clinic": options.clinic_name,
                      "colors": {"primary": options.primary_color}}
    return (
        template.replace("{{clinic_name}}", html.escape(options.clinic_name))
        .replace("{{nonce}}", nonce)
        .replace("{{widget_options}}", _script_json(widget_options))
    )


def make_handler(options: WebOptions) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "clinic-web"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            if path in ("/", "/index.html"):
                nonce = secrets.token_urlsafe(16)
                csp = (
                    "default-src 'self'; "
                    f"script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
                    f"connect-src 'self' {_origins(options.server_url)}; "
                    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                )
                self._send(demo_page(options, nonce).encode(), "text/html; charset=utf-8", {"Content-Security-Policy": csp})
            elif path == "/widget/widget-config.json":
                self._send(json.dumps(widget_config(options)).encode(), "application/json",
                           {"Access-Control-Allow-Origin": "*"})
            elif path in STATIC:
                file, content_type = STATIC[path]
                try:
                    body = file.read_bytes()
                except FileNotFoundError:
                    self._error(HTTPStatus.NOT_FOUND)
                    return
                self._send(body, content_type, {})
            else:
                self._error(HTTPStatus.NOT_FOUND)

        def do_HEAD(self) -> None:  # noqa: N802
            self._error(HTTPStatus.METHOD_NOT_ALLOWED)

        def _error(self, status: HTTPStatus) -> None:
            self._send(status.phrase.encode(), "text/plain; charset=utf-8", {}, status)

        def _send(self, body: bytes, content_type: str, headers: Dict[str, str], status: HTTPStatus = HTTPStatus.OK) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-cache")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet by default
            pass

    return Handler


def default_options(server_url: Optional[str] = None) -> WebOptions:
    settings = get_settings()
    return WebOptions(server_url=server_url or settings.widget_server_url, clinic_name=settings.clinic_name,
                      max_chars=settings.message_max_chars)


def make_server(*, host: str, port: int, options: WebOptions) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(options))
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="web", daemon=True)
    thread.start()
    return thread


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the chat widget and the demo clinic page.")
    settings = get_settings()
    parser.add_argument("--host", default=settings.web_interface)
    parser.add_argument("--port", type=int, default=settings.web_port)
    parser.add_argument("--server-url", default=settings.widget_server_url, help="the assistant's (Rasa's) URL")
    args = parser.parse_args(argv)
    server = make_server(host=args.host, port=args.port, options=default_options(args.server_url))
    print(f"Demo clinic page with the chat widget: http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
