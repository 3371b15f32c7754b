"""Staff accounts for the dashboard: argon2 password hashes (argon2-cffi), lock-out after
STAFF_LOCKOUT_ATTEMPTS wrong passwords in a row, and server-side sessions.

A session is a random token in an HttpOnly, SameSite=Strict cookie; the database keeps only its
SHA-256, with the session's CSRF token and expiry, so sessions survive a restart and work on
every instance. The first account is made on the command line (``bot create-staff``).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.settings import Settings
from bot.staff.records import utcnow
from bot.staff.schema import StaffAccount, StaffSession

MIN_PASSWORD_CHARS = 12
_HASHER = PasswordHasher()
# Checked when the user name is unknown, so that the answer takes as long as for a known one.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A user name or password that cannot be used (the message says why)."""


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    locked_until: Optional[datetime] = None  # UTC, when the account is locked


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

    def authenticate(self, *, username: str, password: str) -> LoginResult:
        """Check a password. A locked account is refused without a real check; every attempt is
        counted before the (slow) check, in one atomic UPDATE, so parallel guesses all count; a
        right password resets the count."""
        now = utcnow()
        if not valid_username(username):
            _verify(_DUMMY_HASH, password)
            return LoginResult(False)
        with self._session() as session, session.begin():
            row = session.get(StaffAccount, username)
            if row is None:
                _verify(_DUMMY_HASH, password)
                return LoginResult(False)
            if row.locked_until is not None and row.locked_until > now:
                _verify(_DUMMY_HASH, password)
                return LoginResult(False, row.locked_until)
            session.execute(update(StaffAccount).where(StaffAccount.username == username)
                            .values(failed_logins=StaffAccount.failed_logins + 1))
        with self._session() as session, session.begin():
            row = session.get(StaffAccount, username)
            if _verify(row.password_hash, password):
                row.failed_logins = 0
                row.locked_until = None
                if _HASHER.check_needs_rehash(row.password_hash):
                    row.password_hash = _HASHER.hash(password)
                return LoginResult(True)
            if row.failed_logins >= self.settings.staff_lockout_attempts:
                row.failed_logins = 0
                row.locked_until = now + timedelta(minutes=self.settings.staff_lockout_minutes)
                return LoginResult(False, row.locked_until)
            return LoginResult(False)

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
    from bot.settings import get_settings
    from bot.staff.records import get_record_store

    settings = settings or get_settings()
    return Accounts(engine=get_record_store(url=settings.records_url).engine, settings=settings)
