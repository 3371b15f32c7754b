"""Domain responses with the clinic's own values: ``nlg: type: bot.rasa.nlg.ClinicResponses``.

Every response may use ``{clinic_name}``, ``{clinic_phone}``, ``{emergency_number}``,
``{crisis_line}`` and ``{opening_hours}``; they are filled here, inside the Rasa server, from the settings (clinic.yml
and the CLINIC_* environment variables). So a rule can send the crisis reply with the right
numbers for the clinic's country without the action server, and no action passes them.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Text

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.ops.settings import get_settings


class ClinicResponses(TemplatedNaturalLanguageGenerator):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, domain: Optional[Domain] = None) -> None:
        super().__init__((domain or Domain.empty()).responses)
        self._clinic = get_settings().clinic_values()

    async def generate(self, utter_action: Text, tracker: DialogueStateTracker, output_channel: Text,
                       **kwargs: Any) -> Optional[Dict[Text, Any]]:
        return await super().generate(utter_action, tracker, output_channel, **{**kwargs, **self._clinic})
