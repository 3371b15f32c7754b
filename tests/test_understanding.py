"""Understanding how patients really write: the questions inside a long or mixed message, up to
two topics in one reply, lay vocabulary, follow-ups that keep the conversation's route, and
comparisons that lead with the direct answer (without the trained model: the NLU result is
given, the knowledge base and the decisions are real)."""
from __future__ import annotations

import pytest

from bot.answers.assistant import Context, Question
from bot.understanding.lexicon import load_lexicon
from bot.understanding.questions import is_question, main_intent, question_parts, split_joined


def sentences_of(text):
    """The sentences of the project's spaCy pipeline (what SpacyNLP gives the NLU graph)."""
    from bot.understanding.nlp import load_pipeline
    from bot.ops.settings import get_settings

    return [sentence.text for sentence in load_pipeline(str(get_settings().spacy_pipeline_path))(text).sents]


# ---- finding the questions -------------------------------------------------------------------

def test_a_story_then_a_question_yields_the_question():
    text = ("I've been on antidepressants for nine years and my GP finally referred me. My partner "
            "is nervous about it. How long does the injection last?")
    assert question_parts(sentences_of(text)) == ["How long does the injection last?"]


def test_one_sentence_with_two_questions_is_split():
    assert split_joined("how long does the drip take, and is the shot safer?") == [
        "how long does the drip take", "is the shot safer?"]
    assert split_joined("what happens before and after the session?") == ["what happens before and after the session?"]


def test_a_lower_case_follow_on_after_a_question_mark_is_a_question_of_its_own():
    # the sentencizer keeps these in one sentence
    assert question_parts(["is the jab more intense, is she right? and roughly when does the jab peak"]) == [
        "is the jab more intense, is she right?", "and roughly when does the jab peak"]
    assert question_parts(["how much gets absorbed from a shot? and in general is ketamine a safe medicine"]) == [
        "how much gets absorbed from a shot?", "and in general is ketamine a safe medicine"]
    # or in a sentence of its own
    assert question_parts(["is she right?", "and roughly when does the jab peak"]) == [
        "is she right?", "and roughly when does the jab peak"]
    # a remark after the question is not one
    assert question_parts(["how long does the drip take? and thanks for your help"]) == []
    assert question_parts(["It is my first time.", "how long does the drip take?"]) == ["how long does the drip take?"]


def test_a_short_check_of_a_claim_is_understood_with_the_claim():
    assert question_parts(["My nurse said the jab wears off faster than the drip.", "Is that true?"]) == [
        "My nurse said the jab wears off faster than the drip. Is that true?"]
    assert question_parts(["He reckons you can't keep an eye on people after the shot.", "Fair point?"]) == [
        "He reckons you can't keep an eye on people after the shot. Fair point?"]
    # a short question of its own stays alone, and so does a check after another question
    assert question_parts(["I'm 60 and new to this.", "Which is faster?"]) == ["Which is faster?"]
    assert question_parts(["Does IM peak sooner?", "Is that right?"]) == ["Does IM peak sooner?", "Is that right?"]


def test_a_single_question_is_understood_whole():
    assert question_parts(sentences_of("which is faster, IV or IM?")) == []
    assert question_parts(sentences_of("I hate needles. I faint every time.")) == []


def test_questions_are_recognised_without_a_question_mark_and_after_and():
    assert is_question("how long does it last")
    assert is_question("and do people get headaches after")
    assert is_question("also what sort of person goes for IM")
    assert not is_question("I'm 52 and a teacher")


def test_a_personal_question_anywhere_gets_the_referral():
    whole = {"intent": {"name": "ask_duration", "confidence": 0.9}}
    parts = [{"intent": {"name": "ask_duration", "confidence": 0.95}},
             {"intent": {"name": "personal_advice", "confidence": 0.8}}]
    assert main_intent(whole, parts)["name"] == "personal_advice"


def test_a_question_inside_small_talk_or_an_unsure_message_is_answered():
    parts = [{"intent": {"name": "ask_duration", "confidence": 0.97}}]
    for whole in ({"intent": {"name": "greet", "confidence": 0.6}}, {"intent": {"name": "nlu_fallback", "confidence": 0.15}}):
        assert main_intent(whole, parts)["name"] == "ask_duration"
    assert main_intent({"intent": {"name": "personal_advice", "confidence": 0.9}}, parts) is None
    unsure = [{"intent": {"name": "ask_peak", "confidence": 0.2}}]
    assert main_intent({"intent": {"name": "greet", "confidence": 0.6}}, unsure) is None


def test_a_topic_read_from_the_whole_message_stays_unless_a_question_is_surely_not_covered():
    whole = {"intent": {"name": "ask_depression", "confidence": 0.5}}
    assert main_intent(whole, [{"intent": {"name": "ask_duration", "confidence": 0.97}}]) is None
    assert main_intent(whole, [{"intent": {"name": "out_of_scope", "confidence": 0.8}}])["name"] == "out_of_scope"
    assert main_intent(whole, [{"intent": {"name": "out_of_scope", "confidence": 0.4}}]) is None


# ---- deciding what to answer ------------------------------------------------------------------

def q(text, intent, routes=(), confidence=0.95):
    return Question(text, intent, confidence, tuple(routes))


def test_two_questions_get_two_topics_in_one_reply(assistant):
    whole = q("how long is IV and what are the side effects", "ask_duration", ["iv"])
    parts = [q("how long is IV", "ask_duration", ["iv"]), q("what are the side effects", "ask_side_effects")]
    reply = assistant.respond(question=whole, parts=parts)
    assert reply.kind == "answers" and len(reply.messages) == 2
    assert {f.topic for f in reply.facts} == {"duration", "side_effects"}
    assert any(f.id == "duration-iv" for f in reply.facts) and any(f.id == "side-effects-common" for f in reply.facts)


def test_at_most_two_topics_and_the_same_topic_for_both_routes_is_compared(assistant):
    parts = [q("how fast is IV", "ask_onset", ["iv"]), q("and IM how fast", "ask_onset", ["im"]),
             q("is it safe", "ask_safety"), q("does it hurt", "ask_needles")]
    asks = assistant.asks(question=q("...", "ask_onset"), parts=parts, context=Context())
    assert [(a.topic, a.route) for a in asks] == [("onset", None), ("safety", None)]


def test_unsure_parts_fall_back_to_the_whole_message(assistant):
    parts = [q("hmm", "ask_peak", confidence=0.2)]
    reply = assistant.respond(question=q("how long does the IV take", "ask_duration", ["iv"]), parts=parts)
    assert reply.topic == "duration" and reply.routes == ("iv",)


@pytest.mark.parametrize("text, intent, routes, expected", [
    ("which is faster", "ask_onset", [], ("onset", None, True)),
    ("is the drip any safer", "ask_safety", ["iv"], ("safety", None, True)),
    ("is IV safe", "ask_safety", ["iv"], ("safety", "iv", False)),
    ("what are the side effects", "ask_side_effects", [], ("side_effects", None, False)),
])
def test_comparisons_compare_both_routes_and_lead_with_the_direct_answer(assistant, text, intent, routes, expected):
    ask, = assistant.asks(question=q(text, intent, routes), parts=(), context=Context())
    assert (ask.topic, ask.route, ask.lead) == expected


def test_which_is_faster_says_im_usually_acts_faster_first(assistant, render):
    from bot.answers.replies import outgoing

    reply = assistant.respond(question=q("which is faster?", "ask_onset"))
    first = render([{"response": m.response, **m.values} for m in outgoing(reply)])[0]["text"]
    assert first.startswith("IM usually acts faster")
    assert "4 to 5 minutes" in first and "Klearwell" in first  # then the detail, both articles named


def test_which_is_better_for_me_never_chooses(assistant, render):
    reply = assistant.respond(question=q("which is better for depression IV or IM", "ask_choosing", ["iv", "im"]))
    text = render([{"response": m.response, **m.values} for m in reply.messages])[0]["text"]
    assert text.startswith("Neither is better for everyone") and "care team will help you decide" in text


@pytest.mark.parametrize("text, expected_route", [
    ("how long does that last then?", "im"),
    ("ok and side effects?", "im"),
    ("what are the side effects", None),
])
def test_follow_ups_naming_no_route_stay_on_the_conversations_route(assistant, text, expected_route):
    intent = "ask_duration" if "long" in text else "ask_side_effects"
    ask, = assistant.asks(question=q(text, intent), parts=(), context=Context("experience", "im"))
    assert ask.route == expected_route


def test_and_the_other_one_switches_route_and_keeps_the_topic(assistant):
    ask, = assistant.asks(question=q("and the other one?", "ask_followup"), parts=(), context=Context("onset", "iv"))
    assert (ask.topic, ask.route) == ("onset", "im")


def test_the_facts_a_question_is_about_come_first(assistant):
    reply = assistant.respond(question=q("is the innerbloom article medical advice?", "ask_about"))
    assert reply.facts[0].id == "about-not-advice"


# ---- lay vocabulary -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, topic", [
    ("I was knackered for days", "side_effects"),
    ("just want to dip a toe in", "first_time"),
    ("how long am I stuck in the chair", "duration"),
    ("my veins are rubbish, thin veins", "needles"),
    ("who's behind these articles", "about"),
])
def test_the_lexicon_maps_lay_words_to_topics(text, topic):
    assert topic in load_lexicon().topics_in(text)


def test_lay_words_reach_the_right_topic_through_the_search(assistant):
    hit = assistant.index.best_topic("feeling totally knackered and queasy the next day, normal?",
                                     min_score=assistant.settings.search_min_score)
    assert hit is not None and hit.topic == "side_effects"


def test_questions_the_articles_do_not_cover_find_no_topic(assistant):
    for text in ("what does a course cost", "is it covered by insurance"):
        assert assistant.search(text=text, route=None) is None


def test_the_topic_classifier_gets_one_lexicon_feature_per_topic():
    from bot.rasa.components import LexiconFeatures

    features = LexiconFeatures(weight=0.5).fit(["x"])
    matrix = features.transform(["so knackered after the jab", "who wrote this", "hello"]).toarray()
    topics = [topic for topic, _ in features.patterns_]
    assert matrix.shape == (3, len(topics))
    assert matrix[0][topics.index("side_effects")] == 0.5 and matrix[1][topics.index("about")] == 0.5
    assert not matrix[2].any()


# ---- the reply fits the channel ---------------------------------------------------------------------

def test_comparisons_fit_the_channel(assistant, render):
    reply = assistant.respond(question=q("which is faster?", "ask_onset"))
    values = [{"response": m.response, **m.values} for m in reply.messages]
    web = render(values, channel="socketio")[0]["text"]
    shell = render(values, channel="cmdline")[0]["text"]
    default = render(values)[0]["text"]
    assert "| IV infusion | IM injection |" in web and "|---|---|" in web
    assert "**" not in shell and "IV infusion:" in shell
    assert "**IV infusion:**" in default
    disclaimer = render([{"response": "utter_disclaimer"}], channel="cmdline")[0]["text"]
    assert "_" not in disclaimer and "not medical advice" in disclaimer
