"""Tables of the clinic answers, in the knowledge base's database but in a metadata of their own:
a knowledge-base rebuild (bot/knowledge/build.py) drops and recreates only the curated tables,
and carries these over when it swaps in a new SQLite file."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import declarative_base

ClinicBase: Any = declarative_base()  # SQLAlchemy 1.4 declarative base (untyped without its mypy plugin)

DRAFT, APPROVED, WITHDRAWN = "draft", "approved", "withdrawn"


class ClinicAnswerRow(ClinicBase):
    __tablename__ = "clinic_answers"
    id = Column(Integer, primary_key=True, autoincrement=True)
    title = Column(String(200), nullable=False)
    text = Column(Text, nullable=False)
    status = Column(String(16), nullable=False, index=True)  # DRAFT, APPROVED or WITHDRAWN
    revision = Column(Integer, nullable=False, default=1)  # every edit adds one; an approval names the one it read
    author = Column(String(64), nullable=False)  # who wrote the current revision
    reviewer = Column(String(64))  # the second account that approved it
    reviewed_at = Column(DateTime)  # UTC
    created_at = Column(DateTime, nullable=False)  # UTC
    updated_at = Column(DateTime, nullable=False)  # UTC


class ClinicQuestionRow(ClinicBase):
    """An example question of a clinic answer: what the matcher compares a patient's question with."""

    __tablename__ = "clinic_answer_questions"
    id = Column(Integer, primary_key=True, autoincrement=True)
    answer_id = Column(Integer, ForeignKey("clinic_answers.id"), nullable=False, index=True)
    text = Column(Text, nullable=False)


class ClinicAuditRow(ClinicBase):
    """Every change: drafted, edited, approved, withdrawn - by whom and when."""

    __tablename__ = "clinic_audit"
    id = Column(Integer, primary_key=True, autoincrement=True)
    answer_id = Column(Integer, nullable=False, index=True)
    at = Column(DateTime, nullable=False)  # UTC
    actor = Column(String(64), nullable=False)
    action = Column(String(16), nullable=False)  # drafted | edited | approved | withdrawn
    revision = Column(Integer, nullable=False)
    detail = Column(Text, nullable=False, default="")


class ClinicVersionRow(ClinicBase):
    """One row: a number that changes with every change to the answers. Each action server
    compares it with the one it loaded, so every instance picks up an approval or a withdrawal
    from the shared database (never from its own memory)."""

    __tablename__ = "clinic_version"
    id = Column(Integer, primary_key=True)
    version = Column(Integer, nullable=False)
