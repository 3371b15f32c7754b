"""Staff accounts for the dashboard: argon2 password hashes (argon2-cffi), sign-in throttling,
and server-side sessions.

Throttling never locks an account (a stranger who knows a user name could otherwise keep its
owner out): a sign-in is ``begin_sign_in`` (may this address try now, and how long to wait
first), then ``finish_sign_in`` (the password check), with

* a **client address** that fails STAFF_LOCKOUT_ATTEMPTS times within STAFF_LOCKOUT_MINUTES
  refused, right password or not, for STAFF_LOCKOUT_MINUTES (its own lock-out, not the
  account's);
* a **growing delay per user name**: after n failures in a row under a name, its next check
  waits 2^(n-1) seconds, at most STAFF_LOGIN_DELAY_MAX_SECONDS. Every attempt is counted before
  its wait (parallel guesses wait in turn); a right password resets it; known and unknown names
  are treated alike, so neither the delay nor the answer tells which names exist.

Both live in the records database under keyed hashes (never a user name or an address in clear
there). A session is a random token in an HttpOnly, SameSite=Strict cookie; the database keeps
only its SHA-256, with the session's CSRF token and expiry, so sessions survive a restart and
work on every instance. The first account is made on the command line (``bot create-staff``).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.ops.settings import Settings
from bot.staff.records import keyed_hash, utcnow
from bot.staff.schema import SignInThrottle, StaffAccount, StaffSession

MIN_PASSWORD_CHARS = 12
_HASHER = PasswordHasher()
# Checked when the user name is unknown, so that the answer takes as long as for a known one.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A user name or password that cannot be used (the message says why)."""


@dataclass(frozen=True)
class Attempt:
    """A sign-in under way: ``refused`` (the address is waiting out its lock-out: no password is
    checked) or ``delay`` seconds to wait before the check. ``user`` is the user name's keyed
    hash, for the log."""

    user: str
    address: str
    refused: bool = False
    delay: float = 0.0


@dataclass(frozen=True)
class SignInResult:
    ok: bool
    address_locked: bool = False  # this failure locked the address out (now)


def delay_after(failures: int, *, cap: float) -> float:
    """The wait before a user name's next password check after ``failures`` in a row."""
    return 0.0 if failures <= 0 else min(cap, 2.0 ** min(failures - 1, 30))


@dataclass(frozen=True)
class StaffLogin:
    """A valid session: who, and the token every form must send back."""

    username: str
    csrf_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_username(username: str) -> bool:
    return 3 <= len(username) <= 64 and username.replace("-", "").replace("_", "").replace(".", "").isalnum()


class Accounts:
    def __init__(self, *, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def _session(self) -> Session:
        return Session(self.engine, future=True)

    def create(self, *, username: str, password: str, replace: bool = False) -> None:
        if not valid_username(username):
            raise AccountError("a user name is 3-64 letters, digits, '.', '-' or '_'")
        if len(password) < MIN_PASSWORD_CHARS:
            raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
        with self._session() as session, session.begin():
            row = session.get(StaffAccount, username)
            if row is not None and not replace:
                raise AccountError(f"the account {username!r} exists already (--reset to set a new password)")
            if row is None:
                row = StaffAccount(username=username, created_at=utcnow())
                session.add(row)
            row.password_hash = _HASHER.hash(password)
            row.failed_logins = 0
            row.locked_until = None
            session.execute(delete(StaffSession).where(StaffSession.username == username))
            session.execute(delete(SignInThrottle).where(SignInThrottle.key == self._user_key(username)))

    # --- signing in -------------------------------------------------------------------------------

    def user_hash(self, username: str) -> str:
        """The keyed hash that stands for a user name in the log and the throttle table."""
        return keyed_hash("staff-user", username, settings=self.settings)[:16]

    def _user_key(self, username: str) -> str:
        return "user:" + self.user_hash(username)

    def _address_key(self, address: str) -> str:
        return "address:" + keyed_hash("staff-address", address, settings=self.settings)[:32]

    @property
    def _window(self) -> timedelta:
        return timedelta(minutes=self.settings.staff_lockout_minutes)

    def begin_sign_in(self, *, username: str, address: str) -> Attempt:
        """Whether this address may try now, and (counting this attempt as a failure until it
        succeeds) how long to wait before the password check."""
        now = utcnow()
        user = self.user_hash(username)
        with self._session() as session, session.begin():
            blocked = session.execute(select(SignInThrottle.blocked_until)
                                      .where(SignInThrottle.key == self._address_key(address))).scalar()
            if blocked is not None and blocked > now:
                return Attempt(user, address, refused=True)
        before, _ = self._count(self._user_key(username), now=now, stale=now - self._window)
        return Attempt(user, address, delay=delay_after(before, cap=self.settings.staff_login_delay_max_seconds))

    def finish_sign_in(self, attempt: Attempt, *, username: str, password: str) -> SignInResult:
        """The password check (as slow for an unknown name); a failure counts against the address."""
        with self._session() as session:
            row = session.get(StaffAccount, username) if valid_username(username) else None
            password_hash = row.password_hash if row is not None else None
        if password_hash is not None and _verify(password_hash, password):
            with self._session() as session, session.begin():
                session.execute(delete(SignInThrottle).where(SignInThrottle.key == self._user_key(username)))
                if _HASHER.check_needs_rehash(password_hash):
                    session.execute(update(StaffAccount).where(StaffAccount.username == username)
                                    .values(password_hash=_HASHER.hash(password)))
            return SignInResult(True)
        if password_hash is None:
            _verify(_DUMMY_HASH, password)
        return SignInResult(False, address_locked=self._address_failed(attempt.address))

    def _count(self, key: str, *, now: datetime, stale: datetime,
               then: Callable[[SignInThrottle], Any] = lambda row: None) -> Any:
        """Add one failure to ``key`` (counting afresh when its latest is older than ``stale``) and
        run ``then`` on its row, in one transaction; the failures before this one, and what
        ``then`` returned."""
        for _ in range(3):
            try:
                with self._session() as session, session.begin():
                    row = session.execute(select(SignInThrottle).where(SignInThrottle.key == key)
                                          .with_for_update()).scalars().first()
                    if row is None:
                        row = SignInThrottle(key=key, failures=0, window_start=now, last_at=now)
                        session.add(row)
                        session.flush()
                    if row.last_at < stale:
                        row.failures, row.window_start = 0, now
                    before = row.failures
                    row.failures, row.last_at = before + 1, now
                    done = then(row)
                return before, done
            except IntegrityError:  # the row was added meanwhile by a parallel attempt: count again
                continue
        raise RuntimeError("sign-in throttle: could not count an attempt")

    def _address_failed(self, address: str) -> bool:
        """One more failure from ``address``; True when this one locks the address out."""
        now = utcnow()

        def lock_when_due(row: SignInThrottle) -> bool:
            if row.failures < self.settings.staff_lockout_attempts:
                return False
            row.failures, row.window_start, row.blocked_until = 0, now, now + self._window
            return True

        return self._count(self._address_key(address), now=now, stale=now - self._window, then=lock_when_due)[1]

    def open_session(self, *, username: str) -> str:
        """A new session for ``username``: the token for its cookie."""
        token = secrets.token_urlsafe(32)
        expires = utcnow() + timedelta(hours=self.settings.staff_session_hours)
        with self._session() as session, session.begin():
            session.execute(delete(StaffSession).where(StaffSession.expires_at < utcnow()))
            session.add(StaffSession(token_hash=_digest(token), username=username,
                                     csrf_token=secrets.token_urlsafe(32), expires_at=expires))
        return token

    def session(self, *, token: str) -> Optional[StaffLogin]:
        if not token:
            return None
        with self._session() as session:
            row = session.execute(select(StaffSession).where(StaffSession.token_hash == _digest(token))).scalars().first()
            if row is None or row.expires_at < utcnow():
                return None
            return StaffLogin(row.username, row.csrf_token)

    def close_session(self, *, token: str) -> None:
        with self._session() as session, session.begin():
            session.execute(delete(StaffSession).where(StaffSession.token_hash == _digest(token)))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def same_token(expected: str, given: Optional[str]) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected, given)


def get_accounts(settings: Optional[Settings] = None) -> Accounts:
    """The staff accounts, in the records database."""
    from bot.ops.settings import get_settings
    from bot.staff.records import get_record_store

    settings = settings or get_settings()
    return Accounts(engine=get_record_store(url=settings.records_url).engine, settings=settings)
