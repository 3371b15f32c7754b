"""The staff dashboard in real headless Chromium, against the running assistant's web server:
accounts made by the documented command, sign-in (one answer for every refusal, a stranger's
address throttled but never the account, every outcome in the log, a Secure cookie), charts drawn
from records of real conversations sent through the assistant, unanswered questions grouped
(three paraphrases, one group), the NLU candidates (added, deleted by hand, deleted with a
forgotten conversation, exported), patient text that cannot turn the page around or widen it,
CSV downloads, CSRF, logout, and an axe-core scan.

The running assistant is started with STAFF_LOCKOUT_ATTEMPTS=4 and STAFF_LOGIN_DELAY_MAX_SECONDS=1
(tests/conftest.py); a stranger signs in from another loopback address (127.0.0.x)."""
from __future__ import annotations

import csv
import http.client
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import uuid

import pytest

from bot.ops.settings import PROJECT_ROOT
from tests.test_widget import AXE, browser  # noqa: F401 - the module-scoped Chromium

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.servers

PASSWORD = "correct horse battery staple"
# Three paraphrases of one question the knowledge base cannot answer.
PARAPHRASES = ["Is there wifi in the infusion room?", "Can I use the wifi during my session?",
               "Do you have free wifi I could use while I wait?"]
# Three ways of asking one price that share no word (issue 23): one group by meaning.
PRICE = ["how much is one infusion?", "what's a session's price", "how expensive is a visit"]


def create_staff(assistant, username: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
    """`python -m bot create-staff NAME --password-stdin`, as README documents, for the running
    assistant's data folder."""
    env = {**os.environ, "DATA_DIR": str(assistant.data_dir), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-m", "bot", "create-staff", username, "--password-stdin"],
                          input=password + "\n", capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=120)


@pytest.fixture(scope="module")
def staff(running_assistant):
    """Two accounts, and records made by real conversations through the assistant (REST)."""
    username = f"alice{uuid.uuid4().hex[:6]}"
    made = create_staff(running_assistant, username)
    assert made.returncode == 0 and "created" in made.stdout, made.stderr
    again = create_staff(running_assistant, username)
    assert again.returncode != 0 and "exists already" in again.stderr
    assert create_staff(running_assistant, "shorty", "short").returncode != 0  # a too-short password
    victim = f"bob{uuid.uuid4().hex[:6]}"
    assert create_staff(running_assistant, victim).returncode == 0

    button = {"button": True}
    for number, text in enumerate(PARAPHRASES + PRICE):
        sender = f"dash-wifi-{number}-{uuid.uuid4().hex[:6]}"
        reply = running_assistant.say(sender, text)
        if any(b.get("payload") == "/feedback_down" for m in reply for b in m.get("buttons") or []):
            running_assistant.say(sender, "/feedback_down", metadata=button)  # answered, but not what they asked
    happy = f"dash-happy-{uuid.uuid4().hex[:6]}"
    running_assistant.say(happy, "how long does the IM shot last?")
    running_assistant.say(happy, "/feedback_up", metadata=button)
    running_assistant.say(happy, "is the IV drip painful?")
    running_assistant.say(happy, "/feedback_down", metadata=button)
    return username, victim


@pytest.fixture
def page(browser, running_assistant):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Console errors too (a script refused by the Content-Security-Policy says so there), except the
    # browser's note on each refused login's status code and on the missing favicon.
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    yield page
    context.close()
    assert not errors, f"errors on the page: {errors}"


def staff_url(assistant, path: str = "") -> str:
    return assistant.web_url.rstrip("/") + "/staff/" + path


def login(page, username: str, password: str) -> None:
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def serious_violations(page):
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert results["testEngine"]["name"] == "axe-core"
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in results["violations"]
            if v["impact"] in ("serious", "critical")]


LOCKOUT_ATTEMPTS = 4  # STAFF_LOCKOUT_ATTEMPTS of the running assistant (tests/conftest.py)


def refused_text(minutes: float = 15) -> str:
    from bot.ops.settings import Settings
    from bot.staff.dashboard import refused_text as text

    return text(Settings(staff_lockout_minutes=minutes))


class Stranger:
    """A client without a browser at another address of this machine: the login form, then a
    sign-in - (status, the page's error line, seconds it took)."""

    def __init__(self, assistant, address: str) -> None:
        self.port, self.address = assistant.web_port, address

    def _request(self, method: str, path: str, body: str = "", headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60, source_address=(self.address, 0))
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            reply = connection.getresponse()
            return reply.status, reply.getheader("Set-Cookie") or "", reply.read().decode()
        finally:
            connection.close()

    def sign_in(self, username: str, password: str):
        _, cookie, form = self._request("GET", "/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        login_cookie = cookie.split(";", 1)[0]
        started = time.monotonic()
        status, _, page = self._request("POST", "/staff/login",
                                        urllib.parse.urlencode({"csrf_token": token, "username": username,
                                                                "password": password}),
                                        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie})
        error = re.search(r'id="login-error">([^<]*)<', page)
        return status, error.group(1) if error else "", time.monotonic() - started


def sign_in_lines(assistant) -> list:
    lines = [json.loads(line) for line in assistant.service_log("web").read_text(errors="replace").splitlines()
             if '"staff-sign-in"' in line]
    return lines


def test_a_stranger_cannot_lock_an_account_and_every_refusal_reads_the_same(page, running_assistant, staff):
    from bot.ops.settings import Settings
    from bot.staff.accounts import Accounts

    username, victim = staff
    stranger = Stranger(running_assistant, "127.0.0.57")
    tries = [stranger.sign_in(victim, f"guess number {n}") for n in range(LOCKOUT_ATTEMPTS)]
    refusal = (401, refused_text())
    assert [(status, error) for status, error, _ in tries] == [refusal] * LOCKOUT_ATTEMPTS
    assert tries[1][2] >= 1.0  # after a failure under this name, its next check waits (growing, at most 1 s here)
    # now the stranger's address is locked out: even the right password gets the same answer
    assert stranger.sign_in(victim, PASSWORD)[:2] == refusal
    # an unknown user name gets the same answer too: nothing tells which names exist
    assert Stranger(running_assistant, "127.0.0.58").sign_in(f"nobody{uuid.uuid4().hex[:6]}", PASSWORD)[:2] == refusal

    # the account is not locked: its owner signs in from her own address (the browser, 127.0.0.1)
    page.goto(staff_url(running_assistant))
    expect(page).to_have_url(staff_url(running_assistant, "login"))  # the dashboard needs a login
    assert serious_violations(page) == []
    login(page, victim, "not the password at all")
    expect(page.get_by_role("alert")).to_have_text(refused_text())
    login(page, victim, PASSWORD)
    expect(page).to_have_url(staff_url(running_assistant))
    cookie, = [c for c in page.context.cookies() if c["name"] == "clinic_staff"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"  # Secure over plain HTTP too
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(staff_url(running_assistant, "login"))

    # every outcome is in the log: hashed user name, address, result - never the name or a password
    victim_hash = Accounts(engine=None, settings=Settings(data_dir=running_assistant.data_dir)).user_hash(victim)
    outcomes = {(line["result"], line["address"]) for line in sign_in_lines(running_assistant)
                if line.get("staff_user") == victim_hash}
    assert {("refused (wrong user name or password)", "127.0.0.57"),
            ("address locked out for 15 minutes", "127.0.0.57"),
            ("refused (address locked out)", "127.0.0.57"),
            ("refused (wrong user name or password)", "127.0.0.1"),
            ("signed in", "127.0.0.1"), ("signed out", "127.0.0.1")} <= outcomes, outcomes
    log = running_assistant.service_log("web").read_text(errors="replace")
    assert victim not in log and PASSWORD not in log and "guess number" not in log and "not the password" not in log


def test_dashboard_charts_clusters_candidates_csv_and_logout(page, running_assistant, staff):
    username, _ = staff
    page.goto(staff_url(running_assistant, "login"))
    login(page, username, PASSWORD)
    expect(page).to_have_url(staff_url(running_assistant))
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()

    # Every chart is drawn by Chart.js from the records of the conversations above.
    for chart in ("chart-messages", "chart-conversations", "chart-outcomes", "chart-topics", "chart-feedback"):
        page.wait_for_function("id => window.Chart && Chart.getChart(document.getElementById(id))", arg=chart)
    total = page.evaluate("""id => Chart.getChart(document.getElementById(id)).data.datasets
                               .reduce((sum, d) => sum + d.data.reduce((a, b) => a + b, 0), 0)""", "chart-messages")
    assert total >= len(PARAPHRASES) + 2
    assert "duration" in page.evaluate("Chart.getChart(document.getElementById('chart-topics')).data.labels")
    feedback = page.evaluate("Chart.getChart(document.getElementById('chart-feedback')).data.datasets.map(d => d.data)")
    assert sum(feedback[0]) >= 1 and sum(feedback[1]) >= 1
    assert page.locator("#chart-messages").bounding_box()["height"] > 100
    assert serious_violations(page) == []

    # The three paraphrases are one group, with its count; so are three ways of asking the price.
    expect(page.get_by_role("heading", name="Unanswered questions, grouped by meaning")).to_be_visible()
    expect(page.locator("#grouping-problem")).to_have_count(0)
    for paraphrases in (PRICE, PARAPHRASES):
        one = page.locator(".cluster").filter(has_text=paraphrases[0])
        expect(one).to_have_count(1)
        for text in paraphrases[1:]:
            expect(one).to_contain_text(text)
        expect(one).to_contain_text("3 questions")
    group = page.locator(".cluster").filter(has_text=PARAPHRASES[0])

    # CSRF: a form post without the session's token is refused (the session cookie alone is not enough).
    refused = page.request.post(staff_url(running_assistant, "candidates"), form={"text": "forged"})
    assert refused.status == 403

    group.get_by_role("button", name="Add to NLU candidates").click()
    candidates = page.locator("#candidates")
    for text in PARAPHRASES:
        expect(candidates).to_contain_text(text)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the candidates (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert set(PARAPHRASES) <= {row["text"] for row in rows} and rows[0]["added_by"] == username

    with page.expect_download() as download:
        page.locator("a[href^='/staff/export/daily.csv']").click()
    daily = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert daily and {"day", "channel", "conversations", "messages"} == set(daily[0])
    assert sum(int(r["messages"]) for r in daily if r["channel"] == "rest") >= len(PARAPHRASES) + 2
    with page.expect_download() as download:
        page.locator("a[href^='/staff/export/outcomes.csv']").click()
    outcomes = {r["outcome"]: int(r["turns"]) for r in csv.DictReader(open(download.value.path(), encoding="utf-8"))}
    assert outcomes["answer"] >= 1

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(staff_url(running_assistant, "login"))
    page.goto(staff_url(running_assistant))
    expect(page).to_have_url(staff_url(running_assistant, "login"))
    assert page.request.get(staff_url(running_assistant, "export/daily.csv")).url.endswith("/staff/login")


def letters(count: int = 8) -> str:
    """A random marker of letters only (digits in a question would be scrubbed as a number)."""
    return "".join(chr(97 + int(c, 16)) for c in uuid.uuid4().hex[:count])


def test_candidates_are_deleted_by_hand_and_with_a_forgotten_conversation(page, running_assistant, staff):
    username, _ = staff
    patient, other = f"dash-forget-{letters()}", f"dash-keep-{letters()}"
    # words the assistant cannot understand: a fallback, whose words are kept for staff
    forgotten = f"{letters()} {letters()} {letters()}?"
    deleted = f"{letters()} {letters()} {letters()}?"
    for sender, question in ((patient, forgotten), (other, deleted)):
        running_assistant.say(sender, question)  # not answered: its words are kept for staff
    page.goto(staff_url(running_assistant, "login"))
    login(page, username, PASSWORD)
    expect(page).to_have_url(staff_url(running_assistant))
    for question in (forgotten, deleted):
        page.locator(".cluster").filter(has_text=question).get_by_role("button", name="Add to NLU candidates").click()
        expect(page.locator("#candidates li").filter(has_text=question)).to_have_count(1)

    # staff delete one by hand (a CSRF-protected form, like every other)
    assert page.request.post(staff_url(running_assistant, "candidates/delete"), form={"candidate": "1"}).status == 403
    page.locator("#candidates li").filter(has_text=deleted).get_by_role("button", name=re.compile("Delete")).click()
    expect(page.locator("#candidates li").filter(has_text=deleted)).to_have_count(0)
    expect(page.locator("#candidates li").filter(has_text=forgotten)).to_have_count(1)

    # the patient asks to be forgotten: the candidate made from the conversation goes with it
    running_assistant.say(patient, "forget me")
    done = running_assistant.say(patient, "/forget_confirm", metadata={"button": True})
    assert any("have been deleted" in m.get("text", "") for m in done)
    page.reload()
    expect(page.locator("#candidates li").filter(has_text=forgotten)).to_have_count(0)
    expect(page.locator(".cluster").filter(has_text=forgotten)).to_have_count(0)


def test_patient_text_cannot_turn_the_dashboard_around_or_widen_it(page, running_assistant, staff):
    """A right-to-left override in a patient's question stays inside it (the dashboard's own text
    after it reads left to right), and a long unbroken string wraps instead of widening the page."""
    username, _ = staff
    marker = letters()
    word = letters()  # names the question with the override (the unbroken string starts with the marker)
    reversing = f"{marker} {word}\u202e {letters()} {letters()}"
    unbroken = f"{marker}{'w' * 460}"
    for number, question in enumerate((reversing, unbroken)):
        running_assistant.say(f"dash-text-{number}-{marker}", question)
    page.goto(staff_url(running_assistant, "login"))
    login(page, username, PASSWORD)
    expect(page).to_have_url(staff_url(running_assistant))
    page.locator(".cluster").filter(has_text=word).get_by_role("button", name="Add to NLU candidates").click()
    candidate = page.locator("#candidates li").filter(has_text=word)
    expect(candidate).to_have_count(1)
    expect(page.locator(".cluster").filter(has_text=marker + "www")).to_have_count(1)
    # the note after the patient's words ("(alice..., 2026-...)") is laid out left to right
    first_left, last_left = candidate.locator(".note").evaluate("""note => {
        const text = note.firstChild, range = document.createRange(), left = at => {
            range.setStart(text, at); range.setEnd(text, at + 1); return range.getBoundingClientRect().left; };
        return [left(0), left(text.length - 1)]; }""")
    assert first_left < last_left, "the dashboard's own text after the patient's words was turned around"
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    assert serious_violations(page) == []


def test_rasas_http_api_stays_off(running_assistant):
    """Rasa's HTTP API stays off: the dashboard reads the database, and Rasa has no /conversations."""
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://127.0.0.1:{running_assistant.rasa_port}/conversations/x/tracker", timeout=10)
    assert error.value.code in (401, 403, 404, 405)
