"""Composing the answer: which facts answer (fact ranker, search), wrong premises, the replies as
domain response names and values, and the wording sent without a Rasa turn."""
