"""The website chat widget in real headless Chromium (Debian's), against the real running
assistant: the demo clinic page served by `python -m bot serve`, Rasa's socket.io channel
with session persistence, the action server and the knowledge base."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot.ops.settings import PROJECT_ROOT

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.servers

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    # One test serves a page through Playwright's router, which Chromium treats as a public site
    # and blocks from reaching the loopback assistant; real clinic pages and the demo are unaffected.
    "--disable-features=LocalNetworkAccessChecks",
]
AXE = PROJECT_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
LAUNCHER = re.compile(r"^Chat with")


@pytest.fixture(scope="module")
def browser():
    """Module-scoped: Playwright's sync API keeps an event loop running while it is open, which
    other modules' asyncio code must not meet."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: ./test.sh installs Debian's chromium")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_widget(page, url):
    page.goto(url)
    page.get_by_role("button", name=LAUNCHER).click()
    log = page.get_by_role("log")
    # The greeting: what the assistant can do, the disclaimer, suggested topics.
    expect(log.locator(".cc-bot").filter(has_text="not medical advice")).to_have_count(1)
    return log


def ask(page, text):
    page.get_by_label("Your question").fill(text)
    page.get_by_label("Your question").press("Enter")


def bot_texts(log):
    return log.locator(".cc-bot").all_inner_texts()


def test_open_greet_and_answer_with_source_and_disclaimer(page, running_assistant):
    log = open_widget(page, running_assistant.web_url)
    expect(page.get_by_label("Your question")).to_be_focused()
    greeting = log.locator(".cc-bot").first
    expect(greeting).to_contain_text("IV")
    assert 3 <= log.locator(".cc-quick-reply").count() <= 4
    # The short disclaimer stays visible in the widget.
    expect(page.locator(".cc-disclaimer")).to_have_text("General information only, not medical advice.")

    # Record whether the typing indicator shows while the answer is on its way.
    page.evaluate("""() => {
        const typing = document.querySelector('.cc-typing');
        window.__typingSeen = false;
        new MutationObserver(() => { if (!typing.hidden) window.__typingSeen = true; })
          .observe(typing, {attributes: true});
    }""")
    ask(page, "which is faster?")
    expect(log.locator(".cc-user").last).to_have_text(re.compile("which is faster?"))
    expect(log.locator(".cc-bot").filter(has_text="Source:")).to_have_count(1)
    expect(log.locator(".cc-bot").filter(has_text="not medical advice")).to_have_count(2)
    reply = log.locator(".cc-bot").filter(has_text="Source:")
    answer = reply.inner_text()
    # The direct answer first, then both routes side by side in a small table.
    assert answer.split(":", 1)[1].strip().startswith("IM usually acts faster") and "minutes" in answer
    expect(reply.locator("table th")).to_have_text(["IV infusion", "IM injection"])
    assert "|" not in answer and "**" not in answer
    assert page.evaluate("window.__typingSeen") is True
    expect(page.locator(".cc-typing")).to_be_hidden()


def test_quick_reply_click_and_keyboard(page, running_assistant):
    log = open_widget(page, running_assistant.web_url)
    page.get_by_role("button", name="Which works faster?").click()
    expect(log.locator(".cc-user").last).to_contain_text("Which works faster?")
    expect(log.locator(".cc-bot").filter(has_text="Source:")).to_have_count(1)
    expect(page.get_by_label("Your question")).to_be_focused()

    # Keyboard only: Escape closes and returns focus to the launcher; Enter reopens.
    page.keyboard.press("Escape")
    expect(page.locator("#cc-panel")).to_be_hidden()
    expect(page.get_by_role("button", name=LAUNCHER)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#cc-panel")).to_be_visible()
    expect(page.get_by_label("Your question")).to_be_focused()
    # Quick replies are reachable with Tab and pressed with Enter.
    page.get_by_role("button", name="Start over").click()
    expect(log.locator(".cc-quick-reply")).to_have_count(4)
    log.locator(".cc-quick-reply").first.focus()
    page.keyboard.press("Tab")
    expect(log.locator(".cc-quick-reply").nth(1)).to_be_focused()
    title = log.locator(".cc-quick-reply").nth(1).inner_text()
    page.keyboard.press("Enter")
    expect(log.locator(".cc-user").last).to_have_text(re.compile(re.escape(title)))
    expect(log.locator(".cc-bot").filter(has_text="Source:")).to_have_count(1)


def test_rating_an_answer_with_the_keyboard_and_the_follow_up(page, running_assistant):
    """Thumbs up / down under an answer: a labelled group of buttons, reached with Tab, pressed
    with Enter; a thumbs-down asks what the patient was looking for."""
    log = open_widget(page, running_assistant.web_url)
    expect(log.locator(".cc-bot").filter(has_text="Privacy:")).to_have_count(1)  # after the first reply
    ask(page, "how long does the drip last?")
    rating = page.get_by_role("group", name="Was this answer helpful?")
    expect(rating.get_by_role("button")).to_have_text(["👍 Helpful", "👎 Not helpful"])
    page.get_by_label("Your question").focus()
    rating.get_by_role("button", name="👎 Not helpful").focus()
    page.keyboard.press("Enter")
    expect(log.locator(".cc-bot").filter(has_text="What were you looking for?")).to_have_count(1)
    ask(page, "whether I can drive afterwards")
    expect(log.locator(".cc-bot").filter(has_text="passed that on")).to_have_count(1)
    expect(page.get_by_label("Your question")).to_be_focused()


def test_forget_me_from_the_menu_deletes_the_conversation_here_and_on_the_server(page, running_assistant):
    import sqlite3

    log = open_widget(page, running_assistant.web_url)
    ask(page, "which is faster?")
    expect(log.locator(".cc-bot").filter(has_text="Source:")).to_have_count(1)
    session = page.evaluate("ClinicChat.widget.state.sessionId")
    page.get_by_role("button", name="Delete my conversation").click()
    expect(log.locator(".cc-bot").filter(has_text="can't be undone")).to_have_count(1)
    page.get_by_role("button", name="Yes, delete it").click()
    expect(log.locator(".cc-bot")).to_have_count(1)
    expect(log.locator(".cc-bot")).to_contain_text("have been deleted")
    expect(log.locator(".cc-user")).to_have_count(0)  # the transcript is gone from this browser too
    stored = page.evaluate("JSON.stringify(localStorage)")
    assert "which is faster" not in stored
    with sqlite3.connect(running_assistant.data_dir / "conversations.db") as db:
        assert db.execute("SELECT count(*) FROM events WHERE sender_id = ?", (session,)).fetchone()[0] == 0
    ask(page, "is the shot painful?")  # a new conversation, with a new session
    expect(log.locator(".cc-bot").filter(has_text="Source:")).to_have_count(1)
    assert page.evaluate("ClinicChat.widget.state.sessionId") not in (None, session)


def test_conversation_survives_a_reload_in_the_same_session(page, running_assistant):
    log = open_widget(page, running_assistant.web_url)
    ask(page, "how long does the drip last?")
    expect(log.locator(".cc-bot").filter(has_text="40 minutes to an hour")).to_have_count(1)
    session = page.evaluate("ClinicChat.widget.state.sessionId")

    page.reload()
    log = page.get_by_role("log")
    # History is shown again and the widget is still open.
    expect(log.locator(".cc-user")).to_have_text([re.compile("how long does the drip last")])
    expect(log.locator(".cc-bot").filter(has_text="40 minutes to an hour")).to_have_count(1)
    expect(page.locator("#cc-panel")).to_be_visible()
    assert page.evaluate("ClinicChat.widget.state.sessionId") == session
    # The server still knows the conversation: a follow-up uses the previous topic (duration).
    ask(page, "and IM?")
    expect(log.locator(".cc-bot").filter(has_text="30 to 45 minutes")).to_have_count(1)


def test_html_is_shown_as_text_never_run(page, running_assistant):
    log = open_widget(page, running_assistant.web_url)
    payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>'
    ask(page, payload)
    expect(log.locator(".cc-user").last).to_have_text(re.compile(re.escape(payload)))
    # greeting, disclaimer, reply, disclaimer (and the privacy notice after the greeting)
    expect(log.locator(".cc-bot").filter(has_not_text="Privacy:")).to_have_count(4)
    assert log.locator("img, script, b").count() == 0
    assert page.evaluate("window.__pwned") is None

    # The bot-side renderer: markdown-like text becomes elements; HTML and unsafe links stay text.
    rendered = page.evaluate(
        """() => {
            const box = document.createElement('div');
            box.appendChild(ClinicChat.renderText(
              '<img src=x onerror="window.__pwned=3"> **bold** _soft_\\n- one\\n- two\\n' +
              '[clinic](https://clinic.example/visit) [bad](javascript:window.__pwned=4)\\n| IV | IM |\\n|---|---|\\n| drip | shot |'));
            document.body.appendChild(box);
            const a = box.querySelector('a');
            return {imgs: box.querySelectorAll('img').length, strong: box.querySelector('strong').textContent,
                    em: box.querySelector('em').textContent, items: box.querySelectorAll('li').length,
                    links: box.querySelectorAll('a').length, href: a.href, target: a.target, rel: a.rel,
                    cells: box.querySelectorAll('td').length, headers: box.querySelectorAll('th').length,
                    text: box.textContent};
        }"""
    )
    assert rendered["imgs"] == 0 and "<img" in rendered["text"]
    assert rendered["strong"] == "bold" and rendered["em"] == "soft" and rendered["items"] == 2
    assert rendered["links"] == 1 and rendered["href"] == "https://clinic.example/visit"
    assert rendered["target"] == "_blank" and "noopener" in rendered["rel"]
    assert "javascript:" in rendered["text"]
    assert rendered["headers"] == 2 and rendered["cells"] == 2
    assert page.evaluate("window.__pwned") is None


def test_message_length_is_limited_in_the_widget_and_on_the_server(page, running_assistant):
    log = open_widget(page, running_assistant.web_url)
    field = page.get_by_label("Your question")
    field.fill("x" * 600)
    assert len(field.input_value()) == 500
    field.press("End")
    field.type("y")
    expect(page.locator(".cc-limit")).to_contain_text("limited to 500 characters")
    # A client that ignores the limit gets a clear answer from the server, and no NLU runs on it.
    page.evaluate("ClinicChat.widget.send('tell me about the drip ' + 'x'.repeat(900), 'long message')")
    expect(log.locator(".cc-bot").filter(has_text="too long")).to_have_count(1)


def test_unread_badge_start_over_and_offline_message(context, running_assistant, tmp_path):
    from tests.tcp_proxy import TcpProxy

    proxy = TcpProxy(("127.0.0.1", running_assistant.rasa_port))
    # A page of the clinic's (allowed) origin whose widget reaches Rasa through a TCP proxy that
    # the test can cut.
    url = running_assistant.web_url + "proxied"
    page_html = ('<!doctype html><html lang="en"><head><title>Proxy</title></head><body><main><h1>Proxy</h1></main>'
                 '<script src="/widget/clinic-chat.js"></script>'
                 f'<script>ClinicChat.init({{server: "{proxy.url}", clinic: "Proxy Clinic"}});</script></body></html>')
    context.route(url, lambda route: route.fulfill(body=page_html, content_type="text/html"))
    page = context.new_page()
    try:
        log = open_widget(page, url)
        expect(page.locator("[data-clinic-chat]")).to_have_attribute("data-connected", "true")

        proxy.drop()  # the connection is gone
        expect(page.locator(".cc-status")).to_contain_text("Reconnecting")
        ask(page, "is the injection painful?")
        pending = log.locator(".cc-user").last
        expect(pending).to_contain_text("Not sent yet")

        # Close the chat; when the connection is back the message is sent and the reply counts as unread.
        page.keyboard.press("Escape")
        proxy.restore()
        expect(page.locator(".cc-badge")).to_be_visible(timeout=30_000)
        launcher = page.get_by_role("button", name=LAUNCHER)
        expect(launcher).to_have_attribute("aria-label", re.compile(r"\(\d+ unread\)"))
        launcher.click()
        expect(page.locator(".cc-badge")).to_be_hidden()
        expect(pending).not_to_contain_text("Not sent yet")
        expect(log.locator(".cc-bot").filter(has_text="Source:")).to_have_count(1)

        # Start over: a new session and a fresh greeting.
        old_session = page.evaluate("ClinicChat.widget.state.sessionId")
        page.get_by_role("button", name="Start over").click()
        expect(log.locator(".cc-user")).to_have_count(0)
        expect(log.locator(".cc-bot").filter(has_text="not medical advice")).to_have_count(1)
        assert page.evaluate("ClinicChat.widget.state.sessionId") != old_session
    finally:
        page.close()
        proxy.close()


def test_accessibility_scan_has_no_serious_violations(context, running_assistant):
    page = context.new_page()
    context.add_init_script(path=str(AXE))
    log = open_widget(page, running_assistant.web_url)
    ask(page, "which is faster?")
    expect(log.locator(".cc-bot").filter(has_text="Source:")).to_have_count(1)
    launcher = page.get_by_role("button", name=LAUNCHER)
    assert launcher.get_attribute("aria-expanded") == "true"
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in results["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == []
    assert results["testEngine"]["name"] == "axe-core"
    # New messages are announced to screen readers.
    assert log.get_attribute("aria-live") == "polite"
    page.close()


def test_mobile_viewport_is_full_screen(browser, running_assistant):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        open_widget(page, running_assistant.web_url)
        box = page.locator("#cc-panel").bounding_box()
        assert box["x"] == 0 and box["y"] == 0 and box["width"] == 390 and box["height"] == 844
        # The input stays on screen, above where the on-screen keyboard opens.
        field = page.get_by_label("Your question").bounding_box()
        assert field["y"] + field["height"] <= 844
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widget-mobile.png"))
        assert (ARTIFACTS / "widget-mobile.png").stat().st_size > 10_000
    finally:
        context.close()


def test_through_the_balancer_the_widget_survives_its_instance_dying(page, context, healthy_cluster):
    """The cluster profile: the demo page's widget talks to haproxy; when the Rasa instance it is
    connected to is killed, it reconnects (to the other instance) and the conversation goes on."""
    import signal

    cluster = healthy_cluster
    log = open_widget(page, cluster.web_url)
    ask(page, "how long does the drip last?")
    expect(log.locator(".cc-bot").filter(has_text="40 minutes to an hour")).to_have_count(1)
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    instance = cookies.get("CLINIC_INSTANCE")
    assert instance in ("rasa-1", "rasa-2"), cookies
    os.kill(cluster.pid(instance), signal.SIGKILL)
    expect(page.locator("[data-clinic-chat]")).to_have_attribute("data-connected", "false")
    expect(page.locator("[data-clinic-chat]")).to_have_attribute("data-connected", "true", timeout=30_000)
    ask(page, "and IM?")
    expect(log.locator(".cc-bot").filter(has_text="30 to 45 minutes")).to_have_count(1)
    expect(log.locator(".cc-bot").filter(has_text="Source:")).to_have_count(2)
