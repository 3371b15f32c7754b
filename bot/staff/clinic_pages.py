"""The dashboard's clinic answers (``/staff/clinic/``): staff write an answer from a group of
unanswered questions, a second account approves it, anyone can withdraw it; every change is in
the audit log shown here. The rules themselves are the store's (bot/clinic/store.py); this module
shows the content checks (bot/clinic/checks.py) and asks the reviewer to confirm the warnings.

Routes are added to the dashboard's blueprint with its guards: every page needs a session and
every POST the session's CSRF token (``guard``: the dashboard's ``signed_in_form``).
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, List, Optional

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.clinic.checks import CheckResult, check
from bot.clinic.schema import DRAFT, WITHDRAWN
from bot.clinic.store import ClinicAnswerError, ClinicStore
from bot.staff.accounts import StaffLogin

MAX_GROUP_RECORDS = 500


def example_lines(*fields: Optional[str]) -> List[str]:
    """Example questions from text areas: one per line."""
    return [line for field in fields for line in (field or "").splitlines() if line.strip()]


def add_clinic_routes(staff: Blueprint, *, guard: Callable, login_of: Callable[[Request], Awaitable[Optional[StaffLogin]]],
                      blocking: Callable[..., Awaitable[Any]], page: Callable[..., HTTPResponse],
                      clinic: Callable[[], ClinicStore], records: Callable[[], Any],
                      article_facts: Callable[[], list]) -> None:
    """``page(template, status=..., **values)``: the dashboard's HTML reply; ``article_facts``:
    the knowledge base's facts, whose figures an answer is compared with."""

    def checked(text: str) -> CheckResult:
        return check(text, facts=article_facts())

    def to_login() -> HTTPResponse:
        return response.redirect("/staff/login", status=303)

    def to_answer(answer_id: int) -> HTTPResponse:
        return response.redirect(f"/staff/clinic/{answer_id}", status=303)

    async def answer_page(staff_login: StaffLogin, answer_id: int, *, error: str = "", status: int = 200,
                          form: Any = None) -> HTTPResponse:
        answer = await blocking(clinic().get, answer_id=answer_id)
        if answer is None:
            return response.text("Not Found", status=404)
        checks = await blocking(checked, answer.text)
        history = await blocking(clinic().audit, answer_id=answer_id)
        return page("clinic_answer.html", status=status, user=staff_login.username, csrf_token=staff_login.csrf_token,
                    answer=answer, checks=checks, history=history, error=error, draft=DRAFT, withdrawn=WITHDRAWN,
                    form=form)

    @staff.get("/clinic/")
    async def clinic_list(request: Request) -> HTTPResponse:
        staff_login = await login_of(request)
        if staff_login is None:
            return to_login()
        answers = await blocking(clinic().answers)
        history = await blocking(clinic().audit)
        return page("clinic_list.html", user=staff_login.username, csrf_token=staff_login.csrf_token,
                    answers=answers, history=history)

    @staff.get("/clinic/new")
    async def clinic_new(request: Request) -> HTTPResponse:
        """The form, with the group's questions (named by their records) as the examples."""
        staff_login = await login_of(request)
        if staff_login is None:
            return to_login()
        chosen = [v for v in request.args.getlist("record") or [] if v.isalnum()][:MAX_GROUP_RECORDS]
        questions = await blocking(records().questions, record_ids=chosen) if chosen else []
        return page("clinic_form.html", user=staff_login.username, csrf_token=staff_login.csrf_token,
                    action="/staff/clinic/", title="", text="", examples="\n".join(questions), extra="", checks=None,
                    error="")

    @staff.post("/clinic/")
    @guard
    async def clinic_create(request: Request, staff_login: StaffLogin, form: Any) -> HTTPResponse:
        title, text = form.get("title") or "", form.get("text") or ""
        examples = example_lines(form.get("examples"), form.get("extra"))
        checks = await blocking(checked, text)
        error = ""
        if checks.ok:
            try:
                answer_id = await blocking(clinic().draft, title=title, text=text, examples=examples,
                                           author=staff_login.username)
                return to_answer(answer_id)
            except ClinicAnswerError as refused:
                error = str(refused)
        return page("clinic_form.html", status=422, user=staff_login.username, csrf_token=staff_login.csrf_token,
                    action="/staff/clinic/", title=title, text=text, examples=form.get("examples") or "",
                    extra=form.get("extra") or "", checks=checks, error=error)

    @staff.get("/clinic/<answer_id:int>")
    async def clinic_show(request: Request, answer_id: int) -> HTTPResponse:
        staff_login = await login_of(request)
        if staff_login is None:
            return to_login()
        return await answer_page(staff_login, answer_id)

    @staff.post("/clinic/<answer_id:int>/edit")
    @guard
    async def clinic_edit(request: Request, staff_login: StaffLogin, form: Any, answer_id: int) -> HTTPResponse:
        text = form.get("text") or ""
        checks = await blocking(checked, text)
        if not checks.ok:
            return await answer_page(staff_login, answer_id, status=422, form=form,
                                     error="The content checks refuse the new text: nothing was changed.")
        try:
            await blocking(clinic().edit, answer_id=answer_id, title=form.get("title") or "", text=text,
                           examples=example_lines(form.get("examples")), editor=staff_login.username)
        except ClinicAnswerError as refused:
            return await answer_page(staff_login, answer_id, status=409, form=form, error=str(refused))
        return to_answer(answer_id)

    @staff.post("/clinic/<answer_id:int>/approve")
    @guard
    async def clinic_approve(request: Request, staff_login: StaffLogin, form: Any, answer_id: int) -> HTTPResponse:
        answer = await blocking(clinic().get, answer_id=answer_id)
        if answer is None:
            return response.text("Not Found", status=404)
        checks = await blocking(checked, answer.text)
        if checks.warnings and form.get("warnings_checked") != "yes":
            return await answer_page(staff_login, answer_id, status=409,
                                     error="Confirm that you checked the warnings before approving.")
        revision = form.get("revision") or ""
        try:
            await blocking(clinic().approve, answer_id=answer_id, reviewer=staff_login.username,
                           revision=int(revision) if revision.isdigit() else -1)
        except ClinicAnswerError as refused:
            return await answer_page(staff_login, answer_id, status=409, error=str(refused))
        return to_answer(answer_id)

    @staff.post("/clinic/<answer_id:int>/withdraw")
    @guard
    async def clinic_withdraw(request: Request, staff_login: StaffLogin, form: Any, answer_id: int) -> HTTPResponse:
        try:
            await blocking(clinic().withdraw, answer_id=answer_id, actor=staff_login.username,
                           reason=form.get("reason") or "")
        except ClinicAnswerError as refused:
            return await answer_page(staff_login, answer_id, status=409, error=str(refused))
        return to_answer(answer_id)
