"""The staff dashboard: ``/staff/`` on the project's web server (bot/ops/web.py), never the patient
widget's pages and never Rasa's HTTP API (which stays off). It reads the records database.

Every page but the login needs a session (bot/staff/accounts.py); every POST carries the
session's CSRF token (the login form a token of its own, double-submitted in a cookie); cookies
are HttpOnly, SameSite=Strict and Secure (unless STAFF_COOKIE_SECURE=false: browsers accept
Secure cookies from http://127.0.0.1 and localhost, so the demo works without it). Charts are
drawn by Chart.js, served from web/node_modules, no CDN.

Sign-in: throttled by client address and slowed per user name (bot/staff/accounts.py), one
answer for every refusal, and every outcome in the log ("staff sign-in: ..." with the user name's
keyed hash, the client address and the result; never the password or the name itself), like
each address's lock-out and each sign-out. Behind a proxy, SANIC_PROXIES_COUNT lets the web
server see the client's address instead of the proxy's.

Patient text (unanswered questions, candidates) is isolated from the page's text direction and
wrapped (``.patient-text`` in staff.css): a right-to-left override in it cannot turn the
dashboard's own words around, and a long unbroken string cannot widen the page.
"""
from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import secrets
from datetime import date
from functools import partial, wraps
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.ops import templates
from bot.ops.settings import PROJECT_ROOT, Settings
from bot.ops.templates import script_json
from bot.staff.accounts import Accounts, Attempt, StaffLogin, same_token
from bot.staff.clusters import Grouping, QuestionGrouper
from bot.staff.records import Period, RecordStore, Summary, summarize, unanswered

if TYPE_CHECKING:
    from bot.clinic.store import ClinicStore

STAFF_ROOT = PROJECT_ROOT / "web" / "staff"
STATIC = {
    "chart.js": (PROJECT_ROOT / "web" / "node_modules" / "chart.js" / "dist" / "chart.umd.js", "text/javascript; charset=utf-8"),
    "dashboard.js": (STAFF_ROOT / "dashboard.js", "text/javascript; charset=utf-8"),
    "staff.css": (STAFF_ROOT / "staff.css", "text/css; charset=utf-8"),
}
SESSION_COOKIE = "clinic_staff"
LOGIN_COOKIE = "clinic_staff_login"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
TABLES = ("daily", "topics", "outcomes", "feedback_topics", "feedback_facts")
DEFAULT_DAYS = 30
_PERIOD_QUERY = re.compile(r"from=\d{4}-\d{2}-\d{2}&to=\d{4}-\d{2}-\d{2}")
MAX_DAYS = 366
MAX_CANDIDATE_RECORDS = 500  # records one "Add to NLU candidates" may name
logger = logging.getLogger("bot.staff.signin")


def render(name: str, **values: Any) -> str:
    """A staff page (web/staff/), through the pages' one templating (bot/ops/templates.py)."""
    return templates.render(STAFF_ROOT, name, **values)


def parse_period(args: Dict[str, List[str]], *, today: Optional[date] = None) -> Period:
    """The period from ``?from=YYYY-MM-DD&to=YYYY-MM-DD``; the last 30 days when absent or invalid."""
    default = Period.last_days(DEFAULT_DAYS, today=today)

    def day(name: str) -> Optional[date]:
        try:
            return date.fromisoformat((args.get(name) or [""])[0])
        except ValueError:
            return None

    first, last = day("from") or default.first, day("to") or default.last
    if first > last or (last - first).days >= MAX_DAYS:
        return default
    return Period(first, last)


def _period_args(request: Request) -> Dict[str, List[str]]:
    """``from`` and ``to`` as lists (Sanic's ``args.get`` gives the first value only)."""
    return {name: request.args.getlist(name) or [] for name in ("from", "to")}


def csv_text(rows: List[Dict[str, Any]], columns: List[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # A cell starting with = + - @ is a formula to a spreadsheet: quote it as text.
        writer.writerow({k: (f"'{v}" if isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in row.items()})
    return out.getvalue()


COLUMNS = {
    "daily": ["day", "channel", "conversations", "messages"],
    "topics": ["topic", "answers"],
    "outcomes": ["outcome", "turns", "share"],
    "feedback_topics": ["topic", "helpful", "not_helpful"],
    "feedback_facts": ["fact", "helpful", "not_helpful"],
}


def chart_data(summary: Summary, period: Period) -> Dict[str, Any]:
    """What dashboard.js draws: one series per channel over the period's days, and the totals."""
    days = [d.isoformat() for d in period.days()]
    channels = sorted({row["channel"] for row in summary.daily})
    messages = {c: [0] * len(days) for c in channels}
    conversations = {c: [0] * len(days) for c in channels}
    index = {d: i for i, d in enumerate(days)}
    for row in summary.daily:
        messages[row["channel"]][index[row["day"]]] = row["messages"]
        conversations[row["channel"]][index[row["day"]]] = row["conversations"]
    return {
        "days": days,
        "messages": messages,
        "conversations": conversations,
        "topics": {"labels": [r["topic"] for r in summary.topics], "values": [r["answers"] for r in summary.topics]},
        "outcomes": {"labels": [r["outcome"] for r in summary.outcomes], "values": [r["turns"] for r in summary.outcomes]},
        "feedback": {"labels": [r["topic"] for r in summary.feedback_topics],
                     "helpful": [r["helpful"] for r in summary.feedback_topics],
                     "not_helpful": [r["not_helpful"] for r in summary.feedback_topics]},
    }


def client_address(request: Request) -> str:
    """The client's address (behind a proxy: from its header, when SANIC_PROXIES_COUNT says so)."""
    return request.remote_addr or request.ip or ""


def refused_text(settings: Settings) -> str:
    """The one answer to every refused sign-in: it never says which check failed."""
    return ("Wrong user name or password, or too many failed sign-ins from here. Check them, or try again in "
            f"{settings.staff_lockout_minutes:g} minutes.")


def audit(result: str, *, user: str, address: str, level: int = logging.INFO) -> None:
    """One log line per sign-in outcome, lock-out or sign-out: hashed user name, address, result."""
    logger.log(level, "staff sign-in: %s", result,
               extra={"audit": "staff-sign-in", "staff_user": user, "address": address, "result": result})


def _set_cookie(reply: HTTPResponse, name: str, value: str, *, secure: bool, max_age: Optional[int] = None) -> None:
    reply.cookies[name] = value
    cookie = reply.cookies[name]
    cookie["path"] = "/staff"
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    if secure:
        cookie["secure"] = True
    if max_age is not None:
        cookie["max-age"] = max_age


def _html(body: str, status: int = 200) -> HTTPResponse:
    return response.html(body, status=status, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                                                       "X-Frame-Options": "DENY"})


def create_blueprint(*, settings: Settings, records: Callable[[], RecordStore], accounts: Callable[[], Accounts],
                     nlp_loader: Optional[Callable] = None, clinic: Optional[Callable[[], "ClinicStore"]] = None,
                     article_facts: Optional[Callable[[], list]] = None) -> Blueprint:
    """``clinic``: the clinic answers' store (bot/clinic/store.py) and ``article_facts``: the
    knowledge base's facts (its content checks compare figures with them); without them the
    dashboard has no clinic answers."""
    staff = Blueprint("staff", url_prefix="/staff")
    grouper = QuestionGrouper(nlp_loader=nlp_loader)

    async def blocking(function: Callable, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, partial(function, *args, **kwargs))

    async def login_of(request: Request) -> Optional[StaffLogin]:
        token = request.cookies.get(SESSION_COOKIE) or ""
        return await blocking(accounts().session, token=token) if token else None

    def to_login() -> HTTPResponse:
        return response.redirect("/staff/login", status=303)

    def signed_in_form(handler: Callable) -> Callable:
        """The one guard of every state-changing route: a signed-in session (else the sign-in
        page) and the session's CSRF token in the form (else 403); the handler gets both."""
        @wraps(handler)
        async def guarded(request: Request, **params: Any) -> HTTPResponse:
            staff_login = await login_of(request)
            if staff_login is None:
                return to_login()
            form = request.form or {}
            if not same_token(staff_login.csrf_token, form.get("csrf_token")):
                return response.text("Forbidden", status=403)
            return await handler(request, staff_login, form, **params)
        return guarded

    def login_page(error: str = "", status: int = 200, secure: bool = False) -> HTTPResponse:
        token = secrets.token_urlsafe(32)
        reply = _html(render("login.html", csrf_token=token, error=error), status=status)
        _set_cookie(reply, LOGIN_COOKIE, token, secure=secure, max_age=3600)
        return reply

    secure = settings.staff_cookie_secure

    @staff.get("/login")
    async def login_form(request: Request) -> HTTPResponse:
        return login_page(secure=secure)

    @staff.post("/login")
    async def login(request: Request) -> HTTPResponse:
        form = request.form or {}
        username, password = (form.get("username") or "").strip()[:128], form.get("password") or ""
        address = client_address(request)
        user = accounts().user_hash(username)
        if not same_token(request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf_token")):
            audit("form expired", user=user, address=address)
            return login_page("The form expired. Please try again.", status=403, secure=secure)
        attempt: Attempt = await blocking(accounts().begin_sign_in, username=username, address=address)
        if attempt.refused:
            audit("refused (address locked out)", user=user, address=address, level=logging.WARNING)
            return login_page(refused_text(settings), status=401, secure=secure)
        if attempt.delay:
            await asyncio.sleep(attempt.delay)  # the user name's failures in a row: a growing wait
        result = await blocking(accounts().finish_sign_in, attempt, username=username, password=password)
        if not result.ok:
            audit("refused (wrong user name or password)", user=user, address=address, level=logging.WARNING)
            if result.address_locked:
                audit(f"address locked out for {settings.staff_lockout_minutes:g} minutes", user=user,
                      address=address, level=logging.WARNING)
            return login_page(refused_text(settings), status=401, secure=secure)
        audit("signed in", user=user, address=address)
        token = await blocking(accounts().open_session, username=username)
        reply = response.redirect("/staff/", status=303)
        _set_cookie(reply, SESSION_COOKIE, token, secure=secure, max_age=int(settings.staff_session_hours * 3600))
        _set_cookie(reply, LOGIN_COOKIE, "", secure=secure, max_age=0)
        return reply

    @staff.post("/logout")
    @signed_in_form
    async def logout(request: Request, staff_login: StaffLogin, form: Any) -> HTTPResponse:
        await blocking(accounts().close_session, token=request.cookies.get(SESSION_COOKIE, ""))
        audit("signed out", user=accounts().user_hash(staff_login.username), address=client_address(request))
        reply = response.redirect("/staff/login", status=303)
        _set_cookie(reply, SESSION_COOKIE, "", secure=secure, max_age=0)
        return reply

    def summary_for(period: Period) -> Tuple[Summary, Grouping, Dict[str, List[str]]]:
        """The period's tables, its unanswered questions grouped, and the records each question
        text came from (what "Add to NLU candidates" sends)."""
        rows = records().records(period=period)
        questions: List[str] = []
        sources: Dict[str, List[str]] = {}
        for row in unanswered(rows):
            questions.append(row.followup or row.question or "")
            sources.setdefault(questions[-1], []).append(row.id)
        return summarize(rows, period=period), grouper.group(questions), sources

    @staff.get("/")
    async def dashboard(request: Request) -> HTTPResponse:
        staff_login = await login_of(request)
        if staff_login is None:
            return to_login()
        period = parse_period(_period_args(request))
        summary, grouping, sources = await blocking(summary_for, period)
        candidates = await blocking(records().candidates)
        query = urlencode({"from": period.first.isoformat(), "to": period.last.isoformat()})
        return _html(render("dashboard.html", user=staff_login.username, csrf_token=staff_login.csrf_token,
                            period=period, query=query, summary=summary, grouping=grouping, sources=sources,
                            candidates=candidates, clinic_answers=clinic is not None,
                            retention_days=settings.retention_days, tables=TABLES,
                            chart_json=script_json(chart_data(summary, period))))

    @staff.get("/export/<filename:str>")
    async def export(request: Request, filename: str) -> HTTPResponse:
        if await login_of(request) is None:
            return to_login()
        name = filename[:-len(".csv")] if filename.endswith(".csv") else ""
        if name == "candidates":
            rows = [{"text": text, "added_by": by, "added_at": at.isoformat(timespec="seconds")}
                    for _, text, by, at in await blocking(records().candidates)]
            body, filename = csv_text(rows, ["text", "added_by", "added_at"]), "nlu-candidates.csv"
        elif name in TABLES:
            period = parse_period(_period_args(request))
            summary = summarize(await blocking(records().records, period=period), period=period)
            body = csv_text(getattr(summary, name), COLUMNS[name])
            filename = f"{name}-{period.first}-{period.last}.csv"
        else:
            return response.text("Not Found", status=404)
        return response.text(body, content_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                      "Cache-Control": "no-store"})

    @staff.post("/candidates")
    @signed_in_form
    async def add_candidates(request: Request, staff_login: StaffLogin, form: Any) -> HTTPResponse:
        # the records a group's questions came from: one candidate per text, linked to the
        # conversations that asked it, so that "forget me" deletes it with them
        chosen = [value for value in (form.getlist("record") or []) if value.isalnum()][:MAX_CANDIDATE_RECORDS]
        if chosen:
            await blocking(records().add_candidates, record_ids=chosen, added_by=staff_login.username)
        return back_to(form)

    @staff.post("/candidates/delete")
    @signed_in_form
    async def delete_candidate(request: Request, staff_login: StaffLogin, form: Any) -> HTTPResponse:
        candidate = form.get("candidate") or ""
        if candidate.isdigit():
            await blocking(records().remove_candidate, candidate_id=int(candidate))
        return back_to(form)

    def back_to(form: Any) -> HTTPResponse:
        back = form.get("back") or ""
        return response.redirect("/staff/?" + back if _PERIOD_QUERY.fullmatch(back) else "/staff/", status=303)

    if clinic is not None and article_facts is not None:
        from bot.staff.clinic_pages import add_clinic_routes

        add_clinic_routes(staff, guard=signed_in_form, login_of=login_of, blocking=blocking,
                          page=lambda template, status=200, **values: _html(render(template, **values), status=status),
                          clinic=clinic, records=records, article_facts=article_facts)

    @staff.get("/static/<name:str>")
    async def static(_: Request, name: str) -> HTTPResponse:
        if name not in STATIC:
            return response.text("Not Found", status=404)
        path, content_type = STATIC[name]
        try:
            return response.raw(path.read_bytes(), content_type=content_type)
        except FileNotFoundError:
            return response.text("Not Found", status=404)

    return staff
