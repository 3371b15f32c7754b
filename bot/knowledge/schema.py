"""Relational schema of the knowledge base (SQLAlchemy 1.4 declarative)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import declarative_base, relationship

Base: Any = declarative_base()  # SQLAlchemy 1.4 declarative base (untyped without its mypy plugin)


class Source(Base):
    __tablename__ = "sources"
    id = Column(String(64), primary_key=True)
    short_name = Column(String(128), nullable=False)
    publisher = Column(String(256), nullable=False)
    title = Column(String(512), nullable=False)
    citation = Column(String(768), nullable=False)


class Topic(Base):
    __tablename__ = "topics"
    id = Column(String(64), primary_key=True)
    title = Column(String(256), nullable=False)
    keywords = Column(Text, nullable=False, default="")  # space separated
    position = Column(Integer, nullable=False)


class Conflict(Base):
    __tablename__ = "conflicts"
    id = Column(String(64), primary_key=True)
    topic_id = Column(String(64), ForeignKey("topics.id"), nullable=False)
    note = Column(Text, nullable=False)


class Fact(Base):
    __tablename__ = "facts"
    id = Column(String(128), primary_key=True)
    topic_id = Column(String(64), ForeignKey("topics.id"), nullable=False, index=True)
    source_id = Column(String(64), ForeignKey("sources.id"), nullable=False)
    conflict_id = Column(String(64), ForeignKey("conflicts.id"), nullable=True)
    text = Column(Text, nullable=False)
    position = Column(Integer, nullable=False)
    kind = Column(String(16), nullable=False, default="fact", index=True)
    source = relationship(Source, lazy="joined")
    routes = relationship("FactRoute", lazy="joined", cascade="all, delete-orphan")
    sentences = relationship("FactSentence", lazy="joined", cascade="all, delete-orphan")
    repeats = relationship("FactRepeat", lazy="joined", cascade="all, delete-orphan")


class FactRoute(Base):
    __tablename__ = "fact_routes"
    fact_id = Column(String(128), ForeignKey("facts.id"), primary_key=True)
    route = Column(String(8), primary_key=True, index=True)


class FactSentence(Base):
    """Which article sentence a fact restates (the coverage map)."""

    __tablename__ = "fact_sentences"
    fact_id = Column(String(128), ForeignKey("facts.id"), primary_key=True)
    sentence_id = Column(String(64), primary_key=True)


class FactRepeat(Base):
    """Another fact that makes the same point (both articles say so): a reply says it once."""

    __tablename__ = "fact_repeats"
    fact_id = Column(String(128), ForeignKey("facts.id"), primary_key=True)
    other_id = Column(String(128), primary_key=True)


class FactQuestion(Base):
    """An example question a fact answers (knowledge/questions/): what the fact ranker learns from."""

    __tablename__ = "fact_questions"
    id = Column(Integer, primary_key=True, autoincrement=True)
    fact_id = Column(String(128), ForeignKey("facts.id"), nullable=False, index=True)
    text = Column(Text, nullable=False)


class RouteSynonym(Base):
    __tablename__ = "route_synonyms"
    __table_args__ = (UniqueConstraint("route", "phrase"),)
    id = Column(Integer, primary_key=True, autoincrement=True)
    route = Column(String(8), nullable=False, index=True)
    label = Column(String(64), nullable=False)
    phrase = Column(String(128), nullable=False)
