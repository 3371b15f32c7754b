"""The staff dashboard in real headless Chromium, against the running assistant's web server:
accounts made by the documented command, login (wrong password refused, lock-out), charts drawn
from records of real conversations sent through the assistant, unanswered questions grouped
(three paraphrases, one group), the NLU candidates export, CSV downloads, CSRF, logout, and an
axe-core scan."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid

import pytest

from bot.settings import PROJECT_ROOT
from tests.test_widget import AXE, browser  # noqa: F401 - the module-scoped Chromium

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.servers

PASSWORD = "correct horse battery staple"
# Three paraphrases of one question the knowledge base cannot answer.
PARAPHRASES = ["Is there wifi in the infusion room?", "Can I use the wifi during my session?",
               "Do you have free wifi I could use while I wait?"]


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
    for number, text in enumerate(PARAPHRASES):
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


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(page, running_assistant, staff):
    _, victim = staff
    page.goto(staff_url(running_assistant))
    expect(page).to_have_url(staff_url(running_assistant, "login"))  # the dashboard needs a login
    assert serious_violations(page) == []
    login(page, victim, "not the password at all")
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    for _ in range(4):
        login(page, victim, "still not the password")
    expect(page.get_by_role("alert")).to_contain_text("locked")
    login(page, victim, PASSWORD)  # the right password no longer helps while locked
    expect(page.get_by_role("alert")).to_contain_text("locked")
    expect(page).to_have_url(staff_url(running_assistant, "login"))


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

    # The three paraphrases are one group, with its count.
    group = page.locator(".cluster").filter(has_text=PARAPHRASES[0])
    expect(group).to_have_count(1)
    for text in PARAPHRASES[1:]:
        expect(group).to_contain_text(text)
    expect(group).to_contain_text("3 questions")

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


def test_rasas_http_api_stays_off(running_assistant):
    """Rasa's HTTP API stays off: the dashboard reads the database, and Rasa has no /conversations."""
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://127.0.0.1:{running_assistant.rasa_port}/conversations/x/tracker", timeout=10)
    assert error.value.code in (401, 403, 404, 405)
