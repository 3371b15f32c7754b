"""Custom Rasa NLU graph components (referenced from config.yml).

* ``RouteEntityExtractor`` turns the ROUTE spans of the project's spaCy
  pipeline (entity ruler fed from the knowledge base) into a ``route`` entity
  whose value is the route id (``iv`` / ``im``), whatever lay word was used.
* ``VocabularyGuard`` learns the content words of the training data; a
  prediction below its confidence bar for a message with not one known
  content word ("blorp flimflam") becomes ``nlu_fallback``.
* ``QuestionParts`` (right after SpacyNLP) adds each question of a long or mixed message
  (bot/understanding/questions.py) to the batch as a message of its own, with its slice of the graph's own
  spaCy doc (no second parse); ``QuestionChoice`` (after the crisis layer) folds them back into
  the message as ``questions`` and, where one of them says better what is asked, takes its
  intent (never over a crisis).
* ``SearchTerms`` keeps the knowledge-base search terms of each message (and question) read
  from the graph's doc in the parse data, so the action server does not parse the text again.
* ``ConfirmationInContext`` reads a "forget me" confirmation that does not answer its own
  question as "forget me" (bot/staff/server.py), using the tracker the graph is given.

The crisis layer has a component of its own (``bot.crisis.component.CrisisGuard``).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, METADATA, TEXT
from spacy.lang.en.stop_words import STOP_WORDS
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.understanding.nlp import doc_search_terms, iter_route_entities

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


class _ReadsTheDoc(_Stateless):
    """A stateless component that reads SpacyNLP's doc of the message."""

    @staticmethod
    def required_components() -> List[type]:
        from rasa.nlu.utils.spacy_utils import SpacyNLP

        return [SpacyNLP]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class RouteEntityExtractor(_ReadsTheDoc):
    """Route entities from the spaCy entity ruler, normalised to the route id."""

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


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class TopicClassifier(GraphComponent):
    """The intent classifier: logistic regression (scikit-learn) on word (1-2) and character
    (2-5) n-grams of the message, plus one feature per topic of the lay vocabulary in
    knowledge/lexicon.yml ("knackered" -> side_effects, "dip a toe in" -> first_time), so a lay
    word never seen in a training example still points to its topic.

    Measured on the dev set of patients' messages (topic of the first question right, fallback
    at 0.15): DIET with one transformer layer 70%, DIET without 76%, this without the lexicon
    84%, with it 88% - and it trains in seconds. Its probabilities feed Rasa's
    FallbackClassifier as DIET's would.
    """

    FILE_NAME = "topic_classifier.joblib"
    RANKING_LENGTH = 10

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"C": 30.0, "max_iter": 3000, "lexicon_weight": 0.5}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 model: Any = None) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self._model = model

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "TopicClassifier":
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "TopicClassifier":
        import joblib

        try:
            with model_storage.read_from(resource) as path:
                model = joblib.load(path / cls.FILE_NAME)
        except (ValueError, FileNotFoundError):
            model = None
        return cls(config, model_storage, resource, model)

    @staticmethod
    def _prepare(text: str) -> str:
        return " ".join(text.lower().split())

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """The lay lexicon is read here, not from Rasa's training data: editing it must retrain this
        component (bot.ops.training.content_fingerprint)."""
        from bot.ops.training import content_fingerprint

        return content_fingerprint(["knowledge/lexicon.yml", "bot/understanding/lexicon.py"])

    def train(self, training_data: TrainingData) -> Resource:
        import joblib
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, make_pipeline

        examples = [e for e in training_data.intent_examples if e.get(TEXT) and e.get(INTENT)]
        texts = [self._prepare(e.get(TEXT)) for e in examples]
        labels = [e.get(INTENT) for e in examples]
        features = FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w[\w']*\b")),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
            ("lexicon", LexiconFeatures(weight=float(self._config["lexicon_weight"]))),
        ])
        classifier = LogisticRegression(C=float(self._config["C"]), max_iter=int(self._config["max_iter"]),
                                        random_state=42)
        self._model = make_pipeline(features, classifier).fit(texts, labels)
        with self._storage.write_to(self._resource) as path:
            joblib.dump(self._model, path / self.FILE_NAME)
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        if self._model is None:
            return messages
        from sklearn import config_context

        texts = [self._prepare(m.get(TEXT) or "") for m in messages]
        with config_context(assume_finite=True):  # n-gram counts of text: finite, no need to check
            rows = self._model.predict_proba(texts)
        for message, probabilities in zip(messages, rows):
            ranked = sorted(zip(self._model.classes_, probabilities), key=lambda pair: pair[1], reverse=True)
            ranking = [{"name": str(name), "confidence": float(p)} for name, p in ranked[: self.RANKING_LENGTH]]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


class LexiconFeatures:
    """scikit-learn transformer: for each text, ``weight`` for every topic whose lay phrases
    (knowledge/lexicon.yml) it contains. The phrases are taken when fitting and kept with the
    model, so a trained model does not change when the lexicon file does (it retrains)."""

    def __init__(self, weight: float = 0.5) -> None:
        self.weight = weight

    def fit(self, texts: Any, labels: Any = None) -> "LexiconFeatures":
        from bot.understanding.lexicon import load_lexicon

        self.patterns_ = [(topic, pattern) for topic, pattern in sorted(load_lexicon().topic_patterns.items())]
        return self

    def transform(self, texts: Any) -> Any:
        import numpy
        from scipy.sparse import csr_matrix

        rows = [[self.weight if pattern.search(text) else 0.0 for _, pattern in self.patterns_] for text in texts]
        return csr_matrix(numpy.array(rows, dtype=float).reshape(len(rows), len(self.patterns_)))

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        return {"weight": self.weight}

    def set_params(self, **params: Any) -> "LexiconFeatures":
        self.weight = params.get("weight", self.weight)
        return self



QUESTION_OF = "question_of"  # on a part's message: the position of its whole message in the batch
QUESTIONS = "questions"  # in the parse data: what each part was understood as
SEARCH_TERMS = "search_terms"  # in the parse data (and each question's): bot.understanding.nlp.doc_search_terms


def _part_docs(text: str, doc: Any) -> List[Any]:
    """(part text, its slice of ``doc`` as a Doc) for each question of the message; [] when the
    message is one question. ``doc`` is SpacyNLP's (of the lower-cased text when the pipeline is
    case-insensitive): the parts' words are the patient's own, their annotations the doc's."""
    from bot.understanding.questions import question_parts

    same_offsets = len(doc.text) == len(text)
    sentences = [text[s.start_char:s.end_char] if same_offsets else s.text for s in doc.sents]
    found, cursor = [], 0
    haystack = text if same_offsets else doc.text
    for part in question_parts(sentences):
        # a part may join two sentences ("He says IM is faster. Is that true?"): any space between
        at = re.compile(r"\s+".join(re.escape(word) for word in part.split())).search(haystack, cursor)
        span = doc.char_span(at.start(), at.end(), alignment_mode="expand") if at else None
        if at is None or span is None:
            return []  # cannot happen with the parts of this doc's own sentences; whole message only
        found.append((haystack[at.start():at.end()], span.as_doc()))
        cursor = at.end()
    return found


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False)
class QuestionParts(_ReadsTheDoc):
    """Adds the questions of each message to the batch (see the module's docstring)."""

    def process(self, messages: List[Message]) -> List[Message]:
        batch: List[Message] = []
        for message in messages:
            position = len(batch)
            batch.append(message)
            text, doc = message.get(TEXT) or "", message.get(SPACY_DOCS[TEXT])
            if doc is None or text.startswith("/") or not doc.has_annotation("SENT_START"):
                continue
            for part, part_doc in _part_docs(text, doc):
                batch.append(Message(data={TEXT: part, METADATA: message.get(METADATA), QUESTION_OF: position,
                                           SPACY_DOCS[TEXT]: part_doc}))
        return batch


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False)
class SearchTerms(_ReadsTheDoc):
    """``search_terms`` in the parse data: what bot/answers/search.py matches on, from the graph's doc."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            doc = message.get(SPACY_DOCS[TEXT])
            if doc is not None:
                message.set(SEARCH_TERMS, doc_search_terms(doc), add_to_output=True)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class QuestionChoice(_Stateless):
    """Folds the parts QuestionParts added back into their message (see the module's docstring)."""

    def process(self, messages: List[Message]) -> List[Message]:
        from bot.crisis.detector import CRISIS_INTENTS
        from bot.understanding.questions import main_intent, part_summary

        parts: Dict[int, List[Message]] = {}
        for message in messages:
            if message.get(QUESTION_OF) is not None:
                parts.setdefault(message.get(QUESTION_OF), []).append(message)
        wholes = [message for message in messages if message.get(QUESTION_OF) is None]
        for position, message in enumerate(messages):
            if position not in parts:
                continue
            questions = [part_summary(part.get(TEXT), part.as_dict()) for part in parts[position]]
            message.set(QUESTIONS, questions, add_to_output=True)
            intent = message.get(INTENT) or {}
            better = main_intent({INTENT: intent}, questions)
            if better and intent.get("name") not in CRISIS_INTENTS:
                ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != better["name"]]
                message.set(INTENT, better, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [better] + ranking, add_to_output=True)
        return wholes


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class ConfirmationInContext(_Stateless):
    """A "forget me" confirmation counts only right after its own question (bot/staff/server.py).

    A button's payload ("/forget_confirm") is read here as Rasa's RegexMessageHandler, always
    the graph's last node, will read it; one that is read as "forget me" becomes that payload,
    so that the handler keeps it so."""

    def process(self, messages: List[Message], tracker: Optional[Any] = None,
                domain: Optional[Any] = None) -> List[Message]:
        from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

        from bot.staff.server import FORGET_ME, confirmation_in_context

        for message in messages:
            payload = (message.get(TEXT) or "").strip().startswith("/")
            final = YAMLStoryReader.unpack_regex_message(message, domain) if payload else message
            intent = final.get(INTENT) or {}
            read = confirmation_in_context({INTENT: intent, INTENT_RANKING_KEY: final.get(INTENT_RANKING_KEY)}, tracker)
            if read[INTENT] is intent:
                continue
            message.set(INTENT, read[INTENT], add_to_output=True)
            message.set(INTENT_RANKING_KEY, read[INTENT_RANKING_KEY], add_to_output=True)
            if payload:
                message.set(TEXT, f"/{FORGET_ME}")
        return messages
