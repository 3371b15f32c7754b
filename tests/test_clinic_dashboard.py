"""Clinic answers end to end, in real headless Chromium against a real running assistant (its own,
with a knowledge base of its own, so that no other test meets its clinic answer): three patients
ask one price question in three words, staff write a clinic answer from their group, the author
cannot approve it, a second account does, and a fourth patient who asks in other words gets it
over REST - with the clinic named as the source and the disclaimer - without a retrain. Before the
approval, and after a withdrawal, the question gets the ordinary decline; a crisis message that
resembles it gets crisis help first; a personal-advice question gets the referral. The content
checks refuse a dose figure and a personal instruction and warn on a figure the articles
contradict; every change is in the audit log on the page."""
from __future__ import annotations

import re
import uuid

import pytest

from bot.ops.settings import PROJECT_ROOT
from tests.test_dashboard import PASSWORD, create_staff, login, serious_violations, staff_url
from tests.test_widget import AXE, browser  # noqa: F401 - the module-scoped Chromium

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.servers

GROUP = ["How much does one infusion session cost?", "What does a single infusion session cost?",
         "How much is the cost of one infusion session?"]
FOURTH = "what's the cost of an infusion session at your clinic?"
ANSWER = "One IV infusion session at our clinic costs 450 dollars, paid on the day. Ask the front desk about packages."
DISCLAIMER = "This is general information, not medical advice."
DECLINED = "That's not something I can answer"


@pytest.fixture(scope="module")
def clinic_assistant(trained_model, tmp_path_factory):
    """The assistant started by the real launcher, with a knowledge base of its own."""
    from bot.ops.harness import start_assistant
    from bot.knowledge.build import build_knowledge_base

    folder = tmp_path_factory.mktemp("clinic")
    kb_url = f"sqlite:///{folder / 'knowledge.db'}"
    build_knowledge_base(knowledge_dir=PROJECT_ROOT / "knowledge", database_url=kb_url)
    with start_assistant(folder / "serve.log", extra_env={"KB_DATABASE_URL": kb_url}) as running:
        running.kb_url = kb_url
        yield running


@pytest.fixture
def page(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"errors on the page: {errors}"


def texts(reply) -> str:
    return "\n".join(message.get("text") or "" for message in reply)


def ask(assistant, text: str) -> str:
    return texts(assistant.say(f"clinic-{uuid.uuid4().hex[:8]}", text))


def sign_in_as(page, assistant, username: str) -> None:
    page.context.clear_cookies()
    page.goto(staff_url(assistant, "login"))
    login(page, username, PASSWORD)
    expect(page).to_have_url(staff_url(assistant))


def test_staff_turn_a_group_into_an_approved_clinic_answer_that_a_new_patient_gets(page, clinic_assistant):
    author, reviewer = f"writer{uuid.uuid4().hex[:6]}", f"reviewer{uuid.uuid4().hex[:6]}"
    for username in (author, reviewer):
        assert create_staff(clinic_assistant, username).returncode == 0
    for text in GROUP:  # three patients, one price question in three wordings: declined, kept for staff
        assert DECLINED in ask(clinic_assistant, text)

    # The author writes the answer from the group: its questions are the examples.
    sign_in_as(page, clinic_assistant, author)
    group = page.locator(".cluster").filter(has_text=GROUP[0])
    for text in GROUP[1:]:
        expect(group).to_contain_text(text)
    group.get_by_role("button", name="Write a clinic answer").click()
    expect(page).to_have_url(re.compile(r"/staff/clinic/new\?"))
    examples = page.get_by_label("Example questions (the group's questions; one per line)")
    assert set(examples.input_value().splitlines()) == set(GROUP)
    assert serious_violations(page) == []
    page.get_by_label("Title").fill("Price of an infusion session")

    # The content checks refuse a dose figure and a personal instruction: nothing is saved.
    page.get_by_label("Answer").fill("A session is 0.5 mg/kg over 40 minutes. You should stop taking your lithium first.")
    page.get_by_role("button", name="Save as a draft").click()
    refusals = page.locator("#refusals")
    expect(refusals).to_contain_text("A dose figure: “0.5 mg/kg”")
    expect(refusals).to_contain_text("A personal instruction: “You should stop")
    assert page.get_by_label("Example questions (the group's questions; one per line)").input_value().splitlines()

    page.get_by_label("Answer").fill(ANSWER)
    page.get_by_label("More example questions (optional; one per line)").fill("How expensive is a visit?")
    page.get_by_role("button", name="Save as a draft").click()
    expect(page.locator("#answer-status")).to_contain_text("draft")
    answer_url = page.url
    expect(page.locator("#answer-examples")).to_contain_text("How expensive is a visit?")
    # the author cannot approve: no button, and the server refuses a forged approval
    expect(page.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)
    expect(page.locator("#own-answer")).to_be_visible()
    csrf = page.locator("input[name=csrf_token]").first.input_value()
    forged = page.request.post(answer_url + "/approve", form={"csrf_token": csrf, "revision": "1"})
    assert forged.status == 409 and "another staff account must approve it" in forged.text()
    assert page.request.post(answer_url + "/approve", form={"revision": "1"}).status == 403  # no CSRF token
    unapproved = ask(clinic_assistant, FOURTH)  # a draft is never given
    assert ANSWER not in unapproved and DECLINED in unapproved

    # A second account approves it; a new patient asking in other words gets it, without a retrain.
    sign_in_as(page, clinic_assistant, reviewer)
    page.goto(answer_url)
    page.get_by_role("button", name="Approve: patients get this answer").click()
    expect(page.locator("#answer-status")).to_contain_text(f"approved by {reviewer}")
    reply = ask(clinic_assistant, FOURTH)
    assert ANSWER in reply
    assert re.search(r"Source: the clinic \(an answer written and reviewed by its staff, \d{4}-\d{2}-\d{2}\)", reply)
    assert DISCLAIMER in reply and DECLINED not in reply

    # Crisis first, and the personal-advice referral still wins, however close to the answer.
    crisis = ask(clinic_assistant, "I can't afford another infusion session, I just want to end my life")
    assert "988" in crisis and ANSWER not in crisis
    advice = ask(clinic_assistant, "With my heart condition and my medicines, should I have an infusion session, "
                                   "and what does it cost?")
    assert "I can't give advice about your own treatment" in advice and ANSWER not in advice

    # Every change is in the audit log, on the answer's page and on the list.
    history = page.locator("#clinic-audit")
    expect(history).to_contain_text(f"{author}")
    expect(history).to_contain_text("drafted")
    expect(history).to_contain_text("approved")

    # Withdrawn: patients no longer get it.
    page.get_by_label("Reason (optional)").fill("prices change in January")
    page.get_by_role("button", name="Withdraw: patients no longer get it").click()
    expect(page.locator("#answer-status")).to_contain_text("withdrawn")
    withdrawn = ask(clinic_assistant, FOURTH)
    assert ANSWER not in withdrawn and DECLINED in withdrawn
    page.goto(staff_url(clinic_assistant, "clinic/"))
    rows = page.locator("#clinic-audit tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("withdrawn")
    expect(rows.nth(0)).to_contain_text("prices change in January")
    expect(page.locator("#clinic-answers")).to_contain_text("withdrawn")
    assert serious_violations(page) == []


def test_a_figure_the_articles_contradict_is_a_warning_the_reviewer_must_confirm(page, clinic_assistant):
    author, reviewer = f"writer{uuid.uuid4().hex[:6]}", f"reviewer{uuid.uuid4().hex[:6]}"
    for username in (author, reviewer):
        assert create_staff(clinic_assistant, username).returncode == 0
    sign_in_as(page, clinic_assistant, author)
    page.goto(staff_url(clinic_assistant, "clinic/new"))
    page.get_by_label("Title").fill("How long the injection lasts here")
    page.get_by_label("Answer").fill("At our clinic the effects of the IM injection last about 3 hours.")
    page.get_by_label("Example questions (the group's questions; one per line)").fill(
        "how long does your injection last\nhow long will the shot's effects go on")
    page.get_by_role("button", name="Save as a draft").click()
    warnings = page.locator("#warnings")
    expect(warnings).to_contain_text("“3 hours”")
    expect(warnings).to_contain_text("30 to 45 minutes")  # the article figure it differs from
    answer_url = page.url

    sign_in_as(page, clinic_assistant, reviewer)
    page.goto(answer_url)
    page.get_by_role("button", name="Approve: patients get this answer").click()
    expect(page.get_by_role("alert")).to_contain_text("Confirm that you checked the warnings")
    expect(page.locator("#answer-status")).to_contain_text("draft")
    page.get_by_label("I checked the warnings").check()
    page.get_by_role("button", name="Approve: patients get this answer").click()
    expect(page.locator("#answer-status")).to_contain_text("approved")
