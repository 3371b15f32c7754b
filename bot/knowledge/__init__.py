"""Knowledge base: curated facts, their sources, and the SQL store that serves them."""
from bot.knowledge.records import ConflictRecord, FactRecord, SourceRecord, TopicRecord
from bot.knowledge.store import KnowledgeBase, KnowledgeSnapshot, SqlKnowledgeBase, get_knowledge_base

__all__ = [
    "ConflictRecord",
    "FactRecord",
    "KnowledgeBase",
    "KnowledgeSnapshot",
    "SourceRecord",
    "SqlKnowledgeBase",
    "TopicRecord",
    "get_knowledge_base",
]
