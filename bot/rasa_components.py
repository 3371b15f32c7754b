"""Custom Rasa NLU graph components (referenced from config.yml).

* ``RouteEntityExtractor`` turns the ROUTE spans of the project's spaCy
  pipeline (entity ruler fed from the knowledge base) into a ``route`` entity
  whose value is the route id (``iv`` / ``im``), whatever lay word was used.
* ``VocabularyGuard`` learns the content words of the training data; a
  prediction below its confidence bar for a message with not one known
  content word ("blorp flimflam") becomes ``nlu_fallback``.

The crisis layer has a component of its own (``bot.crisis.component.CrisisGuard``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES
from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from spacy.lang.en.stop_words import STOP_WORDS
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlp import iter_route_entities

FALLBACK_INTENT = "nlu_fallback"


class _Stateless(GraphComponent):
    """A component with nothing to train or persist."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class RouteEntityExtractor(_Stateless):
    """Route entities from the spaCy entity ruler, normalised to the route id."""

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


def _content_words(message: Message) -> List[str]:
    words = []
    for token in message.get(TOKENS_NAMES[TEXT]) or []:
        text = token.text.lower()
        if text.isalpha() and text not in STOP_WORDS:
            words += [text, (token.lemma or text).lower()]
    return words


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class VocabularyGuard(GraphComponent):
    """Send unsure predictions for messages made only of unknown words to the fallback."""

    FILE_NAME = "vocabulary.json"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"threshold": 0.9}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: Optional[set] = None,
    ) -> None:
        self._threshold = float(config.get("threshold", 0.9))
        self._storage = model_storage
        self._resource = resource
        self._vocabulary = vocabulary or set()

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "VocabularyGuard":
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "VocabularyGuard":
        import json

        try:
            with model_storage.read_from(resource) as path:
                vocabulary = set(json.loads((path / cls.FILE_NAME).read_text(encoding="utf-8")))
        except (ValueError, FileNotFoundError):
            vocabulary = set()
        return cls(config, model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        import json

        for example in training_data.intent_examples:
            self._vocabulary.update(_content_words(example))
        with self._storage.write_to(self._resource) as path:
            (path / self.FILE_NAME).write_text(json.dumps(sorted(self._vocabulary)), encoding="utf-8")
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if not self._vocabulary or intent.get("confidence", 0.0) >= self._threshold:
                continue
            if intent.get("name") == FALLBACK_INTENT:
                continue
            words = _content_words(message)
            if not words or any(word in self._vocabulary for word in words):
                continue  # only stop words ("the other one?") or a known word: the classifier decides
            fallback = {"name": FALLBACK_INTENT, "confidence": self._threshold}
            ranking = message.get(INTENT_RANKING_KEY) or []
            message.set(INTENT, fallback, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [fallback] + [dict(r) for r in ranking], add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=True)
class TopicLexiconFeaturizer(RegexFeaturizer):
    """A feature per topic of the lay vocabulary in knowledge/lexicon.yml ("knackered" ->
    side_effects, "dip a toe in" -> first_time): Rasa's RegexFeaturizer, with its patterns taken
    from the lexicon instead of lookup tables in the NLU data. DIET learns how much each
    topic's words count, so a lay word never seen in a training example still points to its
    topic. The patterns are stored with the model (retrained when the lexicon changes)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**RegexFeaturizer.get_default_config(), "case_sensitive": False}

    def train(self, training_data: TrainingData) -> Resource:
        from bot.lexicon import load_lexicon

        lexicon = load_lexicon()
        self.known_patterns = [
            {"name": f"lexicon_{topic}", "pattern": pattern.pattern}
            for topic, pattern in sorted(lexicon.topic_patterns.items())
        ]
        self._persist()
        return self._resource
