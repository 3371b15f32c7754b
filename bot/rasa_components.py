"""Custom Rasa NLU graph components (referenced from config.yml).

* ``RouteEntityExtractor`` turns the ROUTE spans of the project's spaCy
  pipeline (entity ruler fed from the knowledge base) into a ``route`` entity
  whose value is the route id (``iv`` / ``im``), whatever lay word was used.
* ``CrisisOverride`` runs last: if the message expresses suicidal thoughts,
  self-harm or a medical emergency, the intent becomes ``crisis`` with full
  confidence, beating every other intent and the low-confidence fallback.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlp import iter_route_entities
from bot.safety import is_crisis

CRISIS_INTENT = "crisis"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class RouteEntityExtractor(GraphComponent):
    """Route entities from the spaCy entity ruler, normalised to the route id."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "RouteEntityExtractor":
        return cls()

    @staticmethod
    def required_components() -> List[type]:
        from rasa.nlu.utils.spacy_utils import SpacyNLP

        return [SpacyNLP]

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            doc = message.get(SPACY_DOCS[TEXT])
            if doc is None:
                continue
            found = [
                {**entity, "extractor": self.__class__.__name__} for entity in iter_route_entities(doc)
            ]
            message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class CrisisOverride(GraphComponent):
    """Make a crisis message's intent ``crisis`` whatever the classifier thought."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "CrisisOverride":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if not is_crisis(message.get(TEXT) or ""):
                continue
            intent = {"name": CRISIS_INTENT, "confidence": 1.0}
            ranking: Optional[List[Dict[Text, Any]]] = message.get(INTENT_RANKING_KEY) or []
            others = [dict(r) for r in ranking if r.get("name") != CRISIS_INTENT]
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent] + others, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
