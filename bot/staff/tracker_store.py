"""``bot.staff.tracker_store.ClinicTrackerStore``: the conversations' tracker store named in
endpoints.yml (both profiles), with the staff side's work at each save (bot/staff/server.py):
a confirmed "forget me" deletes instead of saving, crisis turns are counted, and the first
reply of a conversation is noted for the privacy notice. Rasa saves a conversation once per
turn, inside the conversation's lock, so this is where that work belongs."""
from __future__ import annotations

from typing import Any

from bot.staff.server import save_or_forget
from bot.rasa.stores import PrePingSQLTrackerStore


class ClinicTrackerStore(PrePingSQLTrackerStore):
    async def save(self, tracker: Any) -> None:
        await save_or_forget(self, tracker, super().save)
