"""The crisis layer inside Rasa: ``bot.crisis.component.CrisisGuard`` in config.yml.

It runs on every message of every channel, last in the NLU pipeline so that its verdict
beats every intent, and it uses nothing the other components decided (only the spaCy
sentences). For each message it:

1. runs the curated patterns and the classifier over the whole message and each sentence;
2. looks back over the last user turns of this conversation in the tracker (their
   verdicts are stored with them as ``crisis`` in the parse data, so the memory lives in
   the tracker store and survives restarts and other instances);
3. on a crisis, sets the intent to ``crisis_self``, ``crisis_medical`` or ``crisis_other``
   with full confidence; rules answer each with a domain response (no action server);
4. a message the channel marked too long (only its prefix reaches NLU) becomes
   ``message_too_long`` unless it holds a crisis.

The classifier is trained with the model (``rasa train``) from ``bot/crisis/training/``
plus every NLU training question as an ordinary example.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.core.events import SessionStarted, UserUttered
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, METADATA, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.crisis.classifier import CrisisClassifier, training_examples
from bot.crisis.detector import CRISIS_INTENTS, CrisisDetector, Detection
from bot.crisis.patterns import load_patterns

logger = logging.getLogger(__name__)

PARSE_KEY = "crisis"  # where the verdict is kept in the parse data (and so in the tracker)
TOO_LONG_INTENT = "message_too_long"
SCREEN_METADATA = "screen"  # set by bot/channels/guard.py
TOO_LONG = "too_long"


def previous_detections(tracker: Any, turns: int) -> List[Optional[Detection]]:
    """The crisis verdicts of the last ``turns`` user messages of this session, newest first."""
    found: List[Optional[Detection]] = []
    if tracker is None:
        return found
    for event in reversed(getattr(tracker, "events", []) or []):
        if isinstance(event, SessionStarted):
            break
        if isinstance(event, UserUttered):
            found.append(Detection.from_dict((event.parse_data or {}).get(PARSE_KEY)))
            if len(found) >= turns:
                break
    return found


def crisis_negative(example: Message) -> bool:
    """An NLU example teaches the classifier what an ordinary message looks like, unless its
    block says ``metadata: {crisis_negative: false}`` (requests for a person or about one's data
    written by someone overwhelmed: as ordinary examples they made the classifier miss crises)."""
    metadata = (example.get(METADATA) or {}).get("intent") or {}
    return metadata.get("crisis_negative", True) is not False


def sentences_of(message: Message) -> List[str]:
    doc = message.get(SPACY_DOCS[TEXT])
    if doc is None or not doc.has_annotation("SENT_START"):
        return []
    return [sentence.text for sentence in doc.sents]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class CrisisGuard(GraphComponent):
    FILE_NAME = "crisis_classifier.joblib"
    CLEAR = 0.7  # intent confidence of a clear question about the treatment

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"threshold": 0.6, "sentence_threshold": 0.85, "sentence_support": 0.45, "context_threshold": 0.15,
                "concern": 0.3, "context_turns": 2, "topic_threshold": 0.3}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 classifier: Optional[CrisisClassifier] = None) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.detector = CrisisDetector(
            patterns=load_patterns(),
            classifier=classifier,
            threshold=float(self._config["threshold"]),
            sentence_threshold=float(self._config["sentence_threshold"]),
            sentence_support=float(self._config["sentence_support"]),
            context_threshold=float(self._config["context_threshold"]),
            concern=float(self._config["concern"]),
            context_turns=int(self._config["context_turns"]),
            topic_threshold=float(self._config["topic_threshold"]),
        )

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "CrisisGuard":
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "CrisisGuard":
        try:
            with model_storage.read_from(resource) as path:
                classifier = CrisisClassifier.load(path / cls.FILE_NAME)
        except (ValueError, FileNotFoundError):
            # The patterns still work; say so loudly rather than run half a safety layer silently.
            logger.error("crisis layer: no trained classifier in the model; patterns only")
            classifier = None
        return cls(config, model_storage, resource, classifier)

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """The examples (training/), patterns and classifier code are read here, not from Rasa's
        training data: editing them must retrain this component (bot.ops.training.content_fingerprint)."""
        from bot.ops.training import content_fingerprint

        return content_fingerprint(["bot/crisis/training", "bot/crisis/patterns.yml", "bot/crisis/classifier.py",
                                    "bot/crisis/patterns.py"])

    def train(self, training_data: TrainingData) -> Resource:
        examples = training_examples()
        examples += [
            (example.get(TEXT), "none")
            for example in training_data.intent_examples
            if example.get(INTENT) not in CRISIS_INTENTS and example.get(TEXT) and crisis_negative(example)
        ]
        classifier = CrisisClassifier.train(examples)
        with self._storage.write_to(self._resource) as path:
            classifier.save(path / self.FILE_NAME)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message], tracker: Optional[Any] = None) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            detection = self.detector.detect(text, sentences=sentences_of(message))
            previous = previous_detections(tracker, self.detector.context_turns)
            detection = self.detector.in_context(detection, previous, clear_question=self._clear_question(message))
            message.set(PARSE_KEY, detection.as_dict(), add_to_output=True)
            if detection.crisis:
                self._set_intent(message, detection.intent)
            elif (message.get(METADATA) or {}).get(SCREEN_METADATA) == TOO_LONG:
                self._set_intent(message, TOO_LONG_INTENT)
        return messages

    def _clear_question(self, message: Message) -> bool:
        """NLU is confident this is a question about the treatment. Used only to let a later turn
        out of the conversation memory, never to decide that a message is not a crisis."""
        intent = message.get(INTENT) or {}
        name = intent.get("name") or ""
        return name.startswith("ask_") and name != "ask_followup" and intent.get("confidence", 0.0) >= self.CLEAR

    @staticmethod
    def _set_intent(message: Message, name: Optional[str]) -> None:
        intent = {"name": name, "confidence": 1.0}
        ranking = [dict(r) for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != name]
        message.set(INTENT, intent, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [intent] + ranking, add_to_output=True)
