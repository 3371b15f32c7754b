"""Tables of the staff side (SQLAlchemy 1.4 declarative), in the records database.

A turn record holds what staff need to improve the assistant, never a transcript: the
pseudonymous conversation id (a keyed hash, not the sender id), channel, time, intent and
confidence, topic, route, fact ids, outcome and feedback. ``question`` is kept only for a
fallback (not understood or out of scope), a low-confidence reply or a thumbs-down, scrubbed first; crisis turns never have text.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import declarative_base

Base: Any = declarative_base()  # SQLAlchemy 1.4 declarative base (untyped without its mypy plugin)


class TurnRow(Base):
    __tablename__ = "turn_records"
    id = Column(String(32), primary_key=True)
    conversation = Column(String(64), nullable=False, index=True)
    channel = Column(String(32), nullable=False)
    at = Column(DateTime, nullable=False, index=True)  # UTC
    kind = Column(String(16), nullable=False)  # see bot.staff.records.KINDS
    intent = Column(String(64))
    confidence = Column(Float)
    low_confidence = Column(Boolean, nullable=False, default=False)
    topic = Column(String(64))
    route = Column(String(32))
    facts = Column(String(1024), nullable=False, default="")  # fact ids, space separated
    feedback = Column(Integer)  # 1 helpful, -1 not helpful, None not rated
    question = Column(Text)  # scrubbed; only where staff need it
    followup = Column(Text)  # scrubbed answer to "What were you looking for?"
    message_id = Column(String(64))  # Rasa's id of the patient's message (finds it after a thumbs-down)


class StaffAccount(Base):
    __tablename__ = "staff_accounts"
    username = Column(String(64), primary_key=True)
    password_hash = Column(String(256), nullable=False)
    failed_logins = Column(Integer, nullable=False, default=0)  # unused since sign-in throttling (kept for old files)
    locked_until = Column(DateTime)  # UTC; unused: accounts are never locked (bot/staff/accounts.py)
    created_at = Column(DateTime, nullable=False)


class SignInThrottle(Base):
    """Failed sign-ins, by keyed hash: ``user:<hash>`` (failures in a row under one user name,
    known or not: the wait before its next check) and ``address:<hash>`` (failures from one
    client address in the current window, and until when that address is refused)."""

    __tablename__ = "staff_sign_in_throttle"
    key = Column(String(80), primary_key=True)
    failures = Column(Integer, nullable=False, default=0)
    window_start = Column(DateTime, nullable=False)  # UTC: the first failure counted
    last_at = Column(DateTime, nullable=False)  # UTC: the latest attempt
    blocked_until = Column(DateTime)  # UTC, addresses only


class StaffSession(Base):
    __tablename__ = "staff_sessions"
    token_hash = Column(String(64), primary_key=True)  # SHA-256 of the cookie's token
    username = Column(String(64), nullable=False, index=True)
    csrf_token = Column(String(64), nullable=False)
    expires_at = Column(DateTime, nullable=False)  # UTC


class NluCandidate(Base):
    __tablename__ = "nlu_candidates"
    id = Column(Integer, primary_key=True, autoincrement=True)
    text = Column(Text, nullable=False)  # scrubbed, from an unanswered question
    added_by = Column(String(64), nullable=False)
    added_at = Column(DateTime, nullable=False, index=True)  # UTC


class NluCandidateSource(Base):
    """Which conversations (hashed ids, as in turn_records) a candidate's text came from: "forget
    me" deletes the candidates made from the conversation with it."""

    __tablename__ = "nlu_candidate_sources"
    candidate_id = Column(Integer, primary_key=True)
    conversation = Column(String(64), primary_key=True, index=True)
