"""Patient-facing wording that the channels send without a Rasa turn (a rate-limit notice, the
widget's short disclaimer): read from the domain's responses, so it lives in domain.yml like
every other reply."""
from __future__ import annotations

from functools import lru_cache
import string
from typing import Dict, List

import yaml

from bot.ops.settings import PROJECT_ROOT, get_settings

# What a patient gets when a turn fails (the action server, the conversation store or the lock
# store unreachable): sent by the Rasa server (bot/rasa/patches.py) or by the channel (bot/channels/guard.py).
APOLOGY_RESPONSES = ("utter_technical_problem", "utter_disclaimer")


@lru_cache(maxsize=1)
def _responses() -> Dict[str, List[dict]]:
    return yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))["responses"]


def response_text(name: str, channel: str = "") -> str:
    """The text of a domain response: the variant for ``channel`` if there is one, else the first."""
    variants = _responses()[name]
    for variant in variants:
        if channel and variant.get("channel") == channel:
            return variant["text"]
    return next(v["text"] for v in variants if not v.get("channel"))


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def clinic_text(name: str, channel: str = "") -> str:
    """``response_text`` with the clinic's values filled in (as bot.rasa.nlg.ClinicResponses does)."""
    return string.Formatter().vformat(response_text(name, channel), (), _Keep(get_settings().clinic_values()))
