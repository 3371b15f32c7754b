"""The crisis layer: recognise suicidal thoughts, self-harm, overdoses, medical warning signs
and someone else in danger, in any message of any channel, before anything else is answered.

Two independent detectors, either of which triggers:

* curated patterns by category (``patterns.yml``, each with the reason for it), and
* a calibrated classifier on word and character n-grams (``classifier.py``), trained on the
  crisis and hard-negative examples in ``training/``.

Both read the whole message and each of its sentences. The Rasa component
(``component.py``) adds a short conversation-level memory from the tracker and turns a
detection into one of three intents - ``crisis_self``, ``crisis_medical``,
``crisis_other`` - whose rules answer with a domain response, so the crisis reply never
depends on the action server.

Nothing is imported here, so the light parts (patterns, example files) load without scikit-learn.
"""
