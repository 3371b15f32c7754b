"""The events of recent conversations, kept read by the tracker store (bot/rasa/stores.py).

Rasa's SQL tracker store reads and deserialises every event of a conversation's session on every
turn, so a turn costs more the longer the conversation (the benchmark's 100-turn conversation).
Here each Rasa process keeps the deserialised events of its most recent conversations with the
mark of the rows they came from: how many rows the session has, the highest row id and the
latest timestamp. A turn asks the database for that mark only; when it is unchanged the events
come from here, when rows were only added (this turn's save, or another instance's) only those
are read, and anything else (a deletion, a new session, a purge) reads the session again. Every
turn still gets a tracker of its own, rebuilt from the events, so no two turns share one.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Optional, Tuple

Mark = Tuple[int, Optional[int], Optional[float]]  # (rows, highest id, latest timestamp)


@dataclass(frozen=True)
class CachedSession:
    mark: Mark
    events: Tuple[object, ...]  # rasa.shared.core.events.Event, in row order


class SessionCache:
    """A bounded, least-recently-used map of conversation id -> CachedSession."""

    def __init__(self, *, capacity: int) -> None:
        self.capacity = capacity
        self._sessions: "OrderedDict[str, CachedSession]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, sender_id: str) -> Optional[CachedSession]:
        cached = self._sessions.get(sender_id)
        if cached is not None:
            self._sessions.move_to_end(sender_id)
        return cached

    def put(self, sender_id: str, *, mark: Mark, events: List[object]) -> None:
        if self.capacity <= 0:
            return
        self._sessions[sender_id] = CachedSession(mark, tuple(events))
        self._sessions.move_to_end(sender_id)
        while len(self._sessions) > self.capacity:
            self._sessions.popitem(last=False)

    def forget(self, sender_id: str) -> None:
        self._sessions.pop(sender_id, None)
