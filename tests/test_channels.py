"""Message screening shared by every channel, the web server for the widget, and the REST
channel's screening against the real servers."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from bot.channels.guard import NOT_TEXT, SCREEN, TOO_LONG, Incoming, button_payloads, screen


@pytest.mark.parametrize(
    "text, expected",
    [
        ("which is faster?", Incoming("which is faster?")),
        ("x" * 500, Incoming("x" * 500)),
        ("x" * 501, Incoming("x" * 501, {SCREEN: TOO_LONG})),
        ("tell me everything " * 200, Incoming(("tell me everything " * 200)[:2000], {SCREEN: TOO_LONG})),
        ("", Incoming(NOT_TEXT)),
        ("   ", Incoming(NOT_TEXT)),
        (None, Incoming(NOT_TEXT)),
        ({"image": "x"}, Incoming(NOT_TEXT)),
        ("/restart", Incoming("restart")),
        ('/greet{"topic": "x"}', Incoming('greet{"topic": "x"}')),
        ("  //ask_onset", Incoming("ask_onset")),
        ("/", Incoming(NOT_TEXT)),
        ("bad \ud800 surrogate", Incoming("bad ? surrogate")),
    ],
)
def test_screen(text, expected):
    assert screen(text, max_chars=500, prefix_chars=2000) == expected


def test_only_a_button_press_with_a_domain_payload_keeps_the_shortcut():
    assert "/ask_onset" in button_payloads()
    assert screen("/ask_onset", max_chars=500, button=True) == Incoming("/ask_onset")
    assert screen("/ask_onset", max_chars=500, button=False) == Incoming("ask_onset")
    assert screen("/restart", max_chars=500, button=True) == Incoming("restart")
    assert screen('/ask_onset{"route": "im"}', max_chars=500, button=True) == Incoming('ask_onset{"route": "im"}')


def test_screened_intents_are_in_the_domain(domain_dict):
    assert NOT_TEXT[1:] in domain_dict["intents"]
    assert "message_too_long" in domain_dict["intents"]


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """The project's web server (`python -m bot.ops.web`) with a clinic name that needs escaping."""
    import os
    import subprocess
    import sys

    from bot.ops.harness import free_port
    from bot.ops.serve import wait_for_http
    from bot.ops.settings import PROJECT_ROOT

    port = free_port()
    env = {**os.environ, "WEB_PORT": str(port), "CLINIC_NAME": "Sunny <Clinic>", "MESSAGE_MAX_CHARS": "321",
           "WIDGET_SERVER_URL": "http://127.0.0.1:5999", "DATA_DIR": str(tmp_path_factory.mktemp("web")),
           "RASA_PORT": str(free_port()), "ACTION_SERVER_PORT": str(free_port())}
    process = subprocess.Popen([sys.executable, "-m", "bot.ops.web"], cwd=PROJECT_ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/widget/widget-config.json", timeout=60, process=process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_demo_page_embeds_the_widget_with_a_strict_policy(web):
    status, headers, body = get(web + "/")
    assert status == 200
    assert body.count("<script") == 2 and 'src="/widget/clinic-chat.js"' in body
    assert "Sunny &lt;Clinic&gt;" in body and "Sunny <Clinic>" not in body
    assert '"server": "http://127.0.0.1:5999"' in body
    policy = headers["Content-Security-Policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in body
    assert "ws://127.0.0.1:5999" in policy and "unsafe-inline" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    # A new nonce for every page.
    assert get(web + "/")[1]["Content-Security-Policy"] != policy


def test_widget_assets_are_served_locally(web):
    for path in ("/widget/clinic-chat.js", "/widget/clinic-chat.css", "/widget/vendor/socket.io.min.js"):
        status, _, body = get(web + path)
        assert status == 200 and len(body) > 1000, path
    status, headers, body = get(web + "/widget/widget-config.json")
    config = json.loads(body)
    assert config["maxLength"] == 321 and config["transcriptHours"] == 24
    assert config["text"]["disclaimer"] == "General information only, not medical advice."
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_health_reports_each_service(web):
    status, _, body = get(web + "/health")
    assert status == 503  # neither the Rasa server nor the action server runs for this web server
    assert json.loads(body) == {"status": "degraded", "services": {"rasa": "down", "actions": "down"}}


@pytest.mark.parametrize("path", ["/widget/../bot/ops/settings.py", "/web/widget/clinic-chat.js", "/.git/config", "/nope"])
def test_nothing_else_is_served(web, path):
    status, _, body = get(web + path)
    assert status == 404 and "settings" not in body
