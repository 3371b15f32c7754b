"""The crisis layer on its own: curated patterns, the classifier, the conversation memory,
and the crisis replies with each clinic's numbers. (Against the running assistant on every
channel: tests/test_crisis_channels.py.)"""
from __future__ import annotations

import asyncio  # noqa: F401
import re

import pytest

from tests.clients import run_async
import yaml

from bot.crisis.classifier import LABELS, CrisisClassifier, training_examples
from bot.crisis.detector import HELP_INTENTS, CrisisDetector, Detection
from bot.crisis.patterns import PATTERNS_FILE, load_patterns, normalise

# One or more messages per category, in this test's own words; (text, help).
CRISIS = [
    # suicidal, explicit and in slang, typos and other languages
    ("I want to kill myself", "self"),
    ("honestly thinking about suicide again", "self"),
    ("been feeling really suicidal since sunday", "self"),
    ("i wanna unalive myself fr", "self"),
    ("might just kms tonight idk", "self"),
    ("I'm going to ctb this weekend", "self"),
    ("I want to end my life", "self"),
    ("i dont want to live anymore", "self"),
    ("I don't want to live more, it is too heavy", "self"),
    ("ya no quiero vivir, sorry for my english", "self"),
    ("je veux mourir", "self"),
    ("some days I'd honestly rather be dead", "self"),
    # indirect
    ("everyone would be better off without me", "self"),
    ("you can cancel the rest of my sessions, I won't be needing them", "self"),
    ("it won't matter after this weekend anyway", "self"),
    ("I've been saving up my sleeping pills", "self"),
    ("I'm so tired of waking up every morning", "self"),
    ("I've written letters to my kids and sorted out my will", "self"),
    # self-harm
    ("I cut myself again last night", "self"),
    ("the urge to hurt myself is really strong tonight", "self"),
    ("relapsed on sh after two years", "self"),
    ("I burned my arm on purpose", "self"),
    # overdose and poisoning
    ("I think I overdosed", "medical"),
    ("took the whole packet of paracetamol an hour ago", "medical"),
    ("had a bottle of wine with my sleeping tablets", "medical"),
    ("I swallowed some bleach", "medical"),
    # medical warning signs
    ("my lips have gone a bit blue since the injection", "medical"),
    ("I can't breathe properly after the infusion", "medical"),
    ("crushing pain in my chest since the session", "medical"),
    ("the left side of my face is drooping", "medical"),
    ("my throat feels like it's swelling up", "medical"),
    ("blood pressure reading is 215/125 and my head is pounding", "medical"),
    ("worst headache of my life and I'm confused", "medical"),
    # someone else
    ("my husband is not breathing", "other"),
    ("my son took a bunch of pills", "other"),
    ("I found my roommate on the floor and she won't wake up", "other"),
    ("my dad says he's going to kill himself", "other"),
    # buried
    ("which is faster? I don't want to live anymore", "self"),
    ("how long does IM last? also I took too many of my pills", "medical"),
]

ORDINARY = [
    "which is faster, IV or IM?",
    "is IV safer than IM",
    "what are the side effects?",
    "I'm scared of needles",
    "this waiting list is killing me, how long is the IV?",
    "I'd kill for a coffee after the infusion",
    "I overdosed on forum threads last night, which one is gentler?",
    "dying to know how long the IM lasts",
    "what if there's an emergency during the infusion?",
    "can you overdose on ketamine at a clinic?",
    "my car has suicide doors, is there parking?",
    "I'm killing myself laughing at the eye mask idea",
    "telling my boss would be career suicide, do you have evening slots?",
    "do people ever have seizures on ketamine?",
    "would the team call an ambulance if something went wrong?",
    "can ketamine bring on suicidal thoughts?",
    "had a mild headache after the infusion, is that normal?",
    "bit sick and tired after the jab, normal?",
    "my arm is a bit sore where the injection went",
    "I hurt myself by accident falling off my bike, can I still come?",
]


@pytest.fixture(scope="session")
def patterns():
    return load_patterns()


@pytest.fixture(scope="session")
def classifier():
    """Trained exactly as the Rasa component trains it (without the NLU questions). Kept in
    build/test-cache under a fingerprint of everything training reads (and scikit-learn's
    version), so a rerun with unchanged examples and code loads it instead of training again."""
    import sklearn

    from bot.ops.settings import PROJECT_ROOT
    from bot.ops.training import content_fingerprint

    key = content_fingerprint(["bot/crisis/training", "bot/crisis/classifier.py", "bot/crisis/examples.py",
                               "bot/crisis/patterns.py", "bot/crisis/patterns.yml"])[:16]
    path = PROJECT_ROOT / "build" / "test-cache" / f"crisis-classifier-{key}-sklearn{sklearn.__version__}.joblib"
    if path.exists():
        return CrisisClassifier.load(path)
    trained = CrisisClassifier.train(training_examples())
    path.parent.mkdir(parents=True, exist_ok=True)
    trained.save(path)
    return trained


@pytest.fixture(scope="session")
def detector(patterns, classifier):
    return CrisisDetector(patterns=patterns, classifier=classifier)


def test_every_pattern_has_an_id_a_reason_and_compiles():
    data = yaml.safe_load(PATTERNS_FILE.read_text(encoding="utf-8"))
    ids = []
    for category, block in data["categories"].items():
        assert block["help"] in HELP_INTENTS, category
        for item in block["patterns"]:
            assert item["id"] and len(item["reason"]) > 15, item
            re.compile(item["pattern"])
            ids.append(item["id"])
    for item in data["exclusions"] + data["resolved"]:
        assert item["id"] and len(item["reason"]) > 15, item
        ids.append(item["id"])
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("text, help_", CRISIS)
def test_patterns_catch_every_category(patterns, text, help_):
    hit = patterns.first(text)
    assert hit is not None, text
    assert hit.help == help_


@pytest.mark.parametrize("text", ORDINARY)
def test_patterns_leave_idioms_quotes_and_safety_questions_alone(patterns, text):
    assert patterns.first(text) is None


def test_normalisation_straightens_what_patients_type():
    assert normalise("I’m sooooo TIRED   of  waking up") == "i'm soo tired of waking up"
    assert normalise("me quiero morir, más") == "me quiero morir, mas"


def test_the_classifier_has_1500_examples_written_for_it_and_every_class():
    examples = training_examples()
    assert len(examples) >= 1500
    assert {label for _, label in examples} == set(LABELS)


@pytest.mark.parametrize("text, help_", CRISIS)
def test_the_detector_recognises_every_category(detector, text, help_):
    detection = detector.detect(text)
    assert detection.crisis and detection.help == help_
    assert detection.intent == HELP_INTENTS[help_]


@pytest.mark.parametrize("text", ORDINARY)
def test_the_detector_raises_no_false_alarm(detector, text):
    assert not detector.detect(text).crisis


def test_the_classifier_alone_catches_wording_no_pattern_knows(detector, patterns):
    text = "there's really no future for someone like me, I've made up my mind about this weekend"
    detection = detector.detect(text)
    assert detection.crisis
    no_patterns = CrisisDetector(patterns=patterns, classifier=None)
    assert no_patterns.detect("which is faster?").score == 0.0


def test_each_sentence_is_read_as_well_as_the_whole(detector):
    text = "Thanks for the info on prep sessions. I don't see the point of anything anymore."
    sentences = ["Thanks for the info on prep sessions.", "I don't see the point of anything anymore."]
    whole = detector.detect(text, sentences=sentences)
    assert whole.score >= detector.detect(text).score


def _turns(detector, texts, clear=()):
    previous = []
    verdicts = []
    for number, text in enumerate(texts):
        detection = detector.in_context(detector.detect(text), previous, clear_question=number in clear)
        previous.insert(0, detection)
        verdicts.append(detection)
    return verdicts


def test_a_vague_turn_after_a_crisis_still_counts(detector):
    verdicts = _turns(detector, ["how long does IM last", "I want to end it all", "anyway. is it expensive",
                                 "whatever, doesn't matter"])
    assert [v.crisis for v in verdicts] == [False, True, True, True]
    assert verdicts[2].detector == "conversation" and verdicts[2].help == "self"


def test_the_memory_ends_and_never_feeds_itself(detector):
    verdicts = _turns(detector, ["I want to end it all", "ok", "hmm", "ok then"])
    assert [v.crisis for v in verdicts] == [True, True, True, False]


def test_a_clear_question_two_turns_later_is_answered(detector):
    verdicts = _turns(detector, ["I want to end it all", "ok", "how long does the IV take?"], clear={2})
    assert [v.crisis for v in verdicts] == [True, True, False]


def test_help_arriving_releases_the_memory(detector):
    verdicts = _turns(detector, ["my dad collapsed and isn't breathing",
                                 "the ambulance came and they've got him breathing, thank you",
                                 "is the IV put in the hand or the arm?"])
    assert [v.crisis for v in verdicts] == [True, False, False]
    assert verdicts[0].help == "other" and verdicts[1].resolved == "help-arrived"


def test_the_verdict_survives_the_tracker_round_trip(detector):
    detection = detector.detect("I want to kill myself")
    assert Detection.from_dict(detection.as_dict()) == detection
    assert Detection.from_dict(None) is None and Detection.from_dict({"x": 1}) is None
    assert "pattern kill-myself" in detection.explain()
    assert "no crisis" in detector.detect("which is faster?").explain()


def test_crisis_replies_carry_each_clinics_numbers_without_the_action_server(rasa_domain, monkeypatch):
    """The replies are domain responses filled in the Rasa server by bot.rasa.nlg.ClinicResponses."""
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.rasa.nlg import ClinicResponses
    from bot.ops.settings import get_settings

    monkeypatch.setenv("CLINIC_EMERGENCY_NUMBER", "999")
    monkeypatch.setenv("CLINIC_CRISIS_LINE", "Samaritans on 116 123")
    monkeypatch.setenv("CLINIC_NAME", "Harbour Clinic")
    monkeypatch.setenv("CLINIC_PHONE", "020 7946 0000")
    get_settings.cache_clear()
    try:
        generator = ClinicResponses(domain=rasa_domain)
    finally:
        get_settings.cache_clear()
    tracker = DialogueStateTracker("t", rasa_domain.slots)
    replies = {name: run_async(generator.generate(name, tracker, "rest"))["text"] for name in
               ("utter_crisis_self", "utter_crisis_medical", "utter_crisis_other")}
    for text in replies.values():
        assert "999" in text and "Harbour Clinic" in text and "020 7946 0000" in text and "911" not in text
        assert "{" not in text and "Source:" not in text
    assert "Samaritans on 116 123" in replies["utter_crisis_self"]
    assert replies["utter_crisis_medical"].startswith("This could be a medical emergency. Please call 999 now")
    assert replies["utter_crisis_other"].startswith("Please call 999 for them now")


# --- issue 18: the kinds a second independent set found missed, the right help, concern replies ---

def configured_detector(patterns, classifier):
    """The detector at the operating point in config.yml (chosen on the dev sets)."""
    from bot.ops.settings import PROJECT_ROOT

    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    guard = next(c for c in config["pipeline"] if c["name"].endswith("CrisisGuard"))
    return CrisisDetector(patterns=patterns, classifier=classifier,
                          **{k: v for k, v in guard.items() if k != "name"})


NEW_KINDS = [  # in this test's own words: (kind, text, help)
    ("means_as_dose", "how much of my lithium would it take to not wake up", "self"),
    ("means_as_dose", "what dose of ketamine would stop my heart for good, I'm done", "self"),
    ("minor", "im 15 and i cut again, my dad doesnt know", "self"),
    ("online_other", "my friend posted a picture of a rope on insta with the word tonight", "other"),
    ("for_a_friend", "asking for a friend, how many sleeping pills would be enough to not wake up", "self"),
    ("first_person_overdose", "I've taken all my pills. my husband is at work till late", "medical"),
    ("first_person_overdose", "took my whole month of tablets an hour ago, feel fine though", "medical"),
    ("calm_warning", "he's asleep after the session and keeps stopping breathing for a while", "other"),
    ("calm_warning", "my chest has been tight and heavy since the injection, probably nothing", "medical"),
    ("logistics_buried", "1) can I bring a blanket 2) which arm, mine has fresh cuts that keep opening 3) wifi?", "self"),
    ("formal_elderly", "After careful thought I have concluded my family would be better off without me.", "self"),
]

TOPIC_QUESTIONS = [  # questions about the subject: a concern (answer + crisis line), never a crisis
    "Is there a higher risk of self-harm in the days after an IV session?",
    "does ketamine help with suicidal thoughts?",
    "what stops the infusion pump accidentally overdosing someone?",
]


@pytest.fixture(scope="session")
def at_operating_point(patterns, classifier):
    return configured_detector(patterns, classifier)


@pytest.mark.parametrize("kind, text, help_", NEW_KINDS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(NEW_KINDS)])
def test_the_new_kinds_are_crises_with_the_right_help(at_operating_point, kind, text, help_):
    detection = at_operating_point.detect(text)
    assert detection.crisis, (kind, detection.explain())
    assert detection.help == help_, (kind, detection.explain())


@pytest.mark.parametrize("text", TOPIC_QUESTIONS)
def test_a_question_about_the_subject_is_a_concern_not_a_crisis(at_operating_point, text):
    detection = at_operating_point.detect(text)
    assert not detection.crisis and detection.concern, detection.explain()
    assert "concern" in detection.explain()


def test_a_concern_never_hides_a_present_crisis(at_operating_point):
    for text in ("I'm feeling suicidal again tonight", "I have overdosed on my sleeping pills",
                 "i've been self harming again"):
        assert at_operating_point.detect(text).crisis, text


@pytest.mark.parametrize("text, help_", [
    ("I've taken all my pills, my husband is at work", "medical"),  # the writer, though someone else is named
    ("my wife took all of her pills", "other"),
    ("my husband overdosed and is not breathing", "other"),
    ("asking for a friend: she took the whole box of her tablets", "medical"),  # the writer, framed as a friend
    ("I want to end my life", "self"),
    ("I took everything in the cabinet, I don't want to be saved", "medical"),  # an overdose: emergency now
])
def test_who_and_what_decide_the_help_without_the_classifier(patterns, text, help_):
    detector = CrisisDetector(patterns=patterns, classifier=None)
    detection = detector.detect(text)
    assert detection.crisis and detection.help == help_, detection.explain()


def test_the_patterns_read_sentences_past_the_prefix_of_an_overlong_message(patterns):
    story = "I have read both articles and I have many thoughts about them. " * 40
    flagged = patterns.flagged_sentences(story + "I have decided to end my life tonight. Also, parking?")
    assert flagged == ["I have decided to end my life tonight."]
    assert patterns.flagged_sentences(story) == []


def test_a_concern_adds_the_crisis_line_before_the_disclaimer_and_never_to_a_crisis():
    from bot.answers.replies import CONCERN_RESPONSE, DISCLAIMERS, Message, Reply, outgoing

    answer = Reply("answer", (Message("utter_answer"),))
    sent = [m.response for m in outgoing(answer, concern=True)]
    assert sent[-2] == CONCERN_RESPONSE and sent[-1] in DISCLAIMERS
    assert CONCERN_RESPONSE not in [m.response for m in outgoing(answer)]
    crisis = Reply("crisis", (Message("utter_crisis_self"),))
    assert CONCERN_RESPONSE not in [m.response for m in outgoing(crisis, concern=True)]


# A review found these left as mere concerns or excluded as history by the first version of the
# topic-word and past-history logic: each is a present crisis, found by a pattern alone.
PRESENT_DESPITE_TOPIC_WORDS_OR_HISTORY = [
    ("suicidal ideation has come back since my last infusion", "self"),
    ("suicide is on my mind constantly", "self"),
    ("considering overdose", "self"),
    ("what is the most painless suicide method", "self"),
    ("how many mg of ketamine for suicide", "self"),
    ("what's a lethal overdose of paracetamol", "self"),
    ("I'm suicidal again, just like when I was 20", "self"),
    ("suicidal thoughts are back, like a few years ago", "self"),
    ("started self harming again after 3 years clean", "self"),
    ("I'm cutting again, worse than when I was 14", "self"),
    ("what should I do if I have chest pain right now? it started ten minutes ago", "medical"),
    ("already swallowed them all, getting sleepy", "medical"),
]


@pytest.mark.parametrize("text, help_", PRESENT_DESPITE_TOPIC_WORDS_OR_HISTORY)
def test_a_present_crisis_is_never_only_a_concern(patterns, text, help_):
    hits = [hit for hit in patterns.match(patterns.blank_exclusions(normalise(text))) if not hit.rule.topic]
    assert hits, text
    detection = CrisisDetector(patterns=patterns, classifier=None).detect(text)
    assert detection.crisis and detection.help == help_, detection.explain()


def test_nlu_examples_marked_so_are_not_taught_to_the_crisis_classifier_as_ordinary(project_root):
    """Requests for a person or about one's data, written by someone overwhelmed, are not "ordinary"
    examples for the crisis classifier (they made it miss crises); every other NLU example is."""
    from rasa.shared.importers.importer import TrainingDataImporter

    from bot.crisis.component import crisis_negative

    importer = TrainingDataImporter.load_from_dict(training_data_paths=[str(project_root / "data" / "nlu")])
    examples = importer.get_nlu_data().intent_examples
    marked = [e for e in examples if not crisis_negative(e)]
    assert len(marked) >= 300 and {e.get("intent") for e in marked} >= {"talk_to_person", "privacy", "forget_me"}
    assert sum(crisis_negative(e) for e in examples) > 1000
